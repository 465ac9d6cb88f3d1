/**
 * Incremental ("delta") ADS client: DeltaAggregatedResources, Envoy's xds_protocol.rst
 * "Incremental xDS". Same options, status and public methods as AdsClient (the state of
 * the world client), so the proxy picks either (ProxyOptions.xdsProtocol).
 *
 * What differs from state of the world: a response carries only the resources that
 * changed (each with its own version) and `removed_resources`; the client adds and drops
 * RDS/EDS/SDS names with resource_names_subscribe / _unsubscribe instead of resending
 * the whole list; on reconnect the first request of each type sends
 * `initial_resource_versions` (what this proxy holds), so the server resends only what
 * changed during the outage. At 1,000 proxies that halves the churn p99 (bench:xds).
 *
 * Shared with AdsClient (client-base.ts): LDS and CDS are wildcard (empty first
 * subscribe list, which delta-server.ts reads as wildcard for those two types); a
 * response is applied as a whole or NACKed (error_detail, last good config stays);
 * RDS/EDS/SDS names follow the accepted listeners and clusters; initial fetch timeout;
 * jittered backoff rotating through the servers.
 *
 * A server that answers UNIMPLEMENTED to DeltaAggregatedResources before any response
 * (a SotW-only control plane or test double) gets state of the world instead: an
 * AdsClient with the same options takes over, starting at that server, so that delta
 * as the default never leaves a proxy without config.
 */
import type * as grpc from '@grpc/grpc-js';
import { status as grpcStatus } from '@grpc/grpc-js';
import { SHORT_NAMES, type XdsTypeUrl } from '../../xds/type-urls.js';
import { isObject } from '../config/proto-values.js';
import { AdsClient, type AdsClientOptions, type AdsStatus } from './ads-client.js';
import { XdsClientBase, type BaseTypeState, type XdsCall } from './client-base.js';

interface DeltaTypeState extends BaseTypeState {
  /** Names subscribed on the current stream (what the server was told). */
  onStream: Set<string>;
  /** Whether the current stream has had this type's first request. */
  started: boolean;
  /** What this proxy holds: name → resource version (initial_resource_versions). */
  versions: Map<string, string>;
  /** Wanted names answered at least once, by a resource or by removed_resources (initialization). */
  resolved: Set<string>;
}

interface DeltaResource {
  name?: string;
  version?: string;
  resource?: unknown;
}

interface DeltaDiscoveryResponse {
  system_version_info?: string;
  resources?: DeltaResource[];
  type_url?: string;
  removed_resources?: string[];
  nonce?: string;
}

export class DeltaAdsClient extends XdsClientBase<DeltaTypeState, DeltaDiscoveryResponse> {
  /** Set when the server does not serve delta xDS: everything is delegated to it. */
  private sotw: AdsClient | undefined;

  constructor(opts: AdsClientOptions) {
    super(opts, 'delta ADS', (typeUrl, kind, wildcard) => ({
      typeUrl, kind, wildcard, names: new Set(), onStream: new Set(), started: false, versions: new Map(), version: '', nonce: '', received: false, resolved: new Set(),
    }));
  }

  override get isInitialized(): boolean {
    return this.sotw?.isInitialized ?? super.isInitialized;
  }

  override get currentAddress(): string {
    return this.sotw?.currentAddress ?? super.currentAddress;
  }

  /** Whether this client fell back to state of the world (the server answered UNIMPLEMENTED). */
  get protocol(): 'delta' | 'sotw' {
    return this.sotw === undefined ? 'delta' : 'sotw';
  }

  override status(): AdsStatus {
    return this.sotw?.status() ?? super.status();
  }

  protected openCall(client: grpc.Client): XdsCall<DeltaDiscoveryResponse> {
    return (client as unknown as { DeltaAggregatedResources(): XdsCall<DeltaDiscoveryResponse> }).DeltaAggregatedResources();
  }

  protected onStreamStart(): void {
    // Subscriptions and nonces belong to one stream; what we hold (versions) carries over.
    for (const ts of this.types.values()) {
      ts.nonce = '';
      ts.started = false;
      ts.onStream = new Set();
    }
    for (const ts of this.types.values()) if (ts.wildcard || ts.names.size > 0) this.subscribe(ts);
  }

  protected override refused(err: grpc.ServiceError | grpc.StatusObject | undefined): boolean {
    if (err?.code !== grpcStatus.UNIMPLEMENTED) return false;
    this.fallBack();
    return true;
  }

  /** State of the world from now on, starting with the server that refused delta. */
  private fallBack(): void {
    const i = this.addressIndex % this.opts.addresses.length;
    const addresses = [...this.opts.addresses.slice(i), ...this.opts.addresses.slice(0, i)];
    this.opts.log.warn({ address: addresses[0] }, 'the xDS server does not serve delta xDS (UNIMPLEMENTED); using state of the world');
    this.sotw = new AdsClient({ ...this.opts, addresses, backoff: this.backoff });
    this.sotw.start();
  }

  /**
   * Brings the stream's subscription of `ts` to ts.names: the type's first request on
   * a stream subscribes everything wanted (nothing for wildcard LDS/CDS) and says what
   * is held; later ones send only the difference.
   */
  private subscribe(ts: DeltaTypeState): void {
    if (this.call === undefined) return;
    const add = [...ts.names].filter((n) => !ts.onStream.has(n)).sort();
    const drop = [...ts.onStream].filter((n) => !ts.names.has(n)).sort();
    const req: Record<string, unknown> = { type_url: ts.typeUrl };
    if (!ts.started) {
      if (!ts.wildcard && add.length === 0) return; // nothing wanted yet: an empty first request would mean wildcard
      ts.started = true;
      if (ts.versions.size > 0) req.initial_resource_versions = Object.fromEntries(ts.versions);
    } else if (add.length === 0 && drop.length === 0) {
      return;
    }
    if (add.length > 0) req.resource_names_subscribe = add;
    if (drop.length > 0) req.resource_names_unsubscribe = drop;
    ts.onStream = new Set(ts.names);
    this.write(req);
  }

  private ack(ts: DeltaTypeState, nonce: string, errorDetail?: string): void {
    const req: Record<string, unknown> = { type_url: ts.typeUrl, response_nonce: nonce };
    if (errorDetail !== undefined) req.error_detail = XdsClientBase.errorDetail(errorDetail);
    this.write(req);
  }

  protected onResponse(msg: DeltaDiscoveryResponse): void {
    const typeUrl = msg.type_url ?? '';
    const ts = this.types.get(typeUrl);
    const version = msg.system_version_info ?? '';
    const nonce = msg.nonce ?? '';
    if (ts === undefined) {
      this.opts.log.warn({ typeUrl }, 'ignoring delta xDS response of a type not subscribed');
      return;
    }
    ts.nonce = nonce;
    const resources: Record<string, unknown>[] = [];
    const versions = new Map<string, string>();
    let error: string | undefined;
    for (const r of msg.resources ?? []) {
      const res = r.resource;
      if (!isObject(res) || res['@type'] !== typeUrl) {
        error = `resource of type ${isObject(res) ? String(res['@type']) : typeof res} in a ${SHORT_NAMES[ts.typeUrl]} response`;
        break;
      }
      const inner = ts.kind === 'endpoint' ? res.cluster_name : res.name;
      const name = typeof r.name === 'string' && r.name !== '' ? r.name : inner;
      if (typeof name !== 'string' || name !== inner) {
        error = `${SHORT_NAMES[ts.typeUrl]} resource named ${JSON.stringify(r.name)} holds ${JSON.stringify(inner)}`;
        break;
      }
      if (!ts.wildcard && !ts.names.has(name)) continue; // no longer asked for (an unsubscribe crossed it)
      resources.push(res);
      versions.set(name, r.version ?? '');
    }
    const removed = msg.removed_resources ?? [];
    if (error === undefined) {
      try {
        if (ts.kind === 'secret') this.opts.onSecrets?.(resources);
        else this.opts.state.apply(ts.kind, resources, version, { full: false, remove: removed });
      } catch (e) {
        error = e instanceof Error ? e.message : String(e);
      }
    }
    if (error !== undefined) {
      // What we hold (versions) is unchanged: a reconnect asks for the refused resources again.
      this.opts.log.warn({ type: SHORT_NAMES[ts.typeUrl], version, error }, 'NACK');
      this.ack(ts, nonce, error);
      this.opts.onResponse?.({ typeUrl, version, accepted: false, error });
      return;
    }
    for (const [name, v] of versions) {
      ts.versions.set(name, v);
      ts.resolved.add(name);
    }
    for (const name of removed) {
      ts.versions.delete(name);
      // A wanted name the server says does not exist is answered: initialization need not wait for it.
      if (ts.names.has(name)) ts.resolved.add(name);
    }
    this.ack(ts, nonce);
    this.accepted(ts, typeUrl, version);
  }

  protected resubscribe(typeUrl: XdsTypeUrl, wanted: Set<string>): void {
    const ts = this.types.get(typeUrl)!;
    this.retain(ts, wanted);
    for (const n of ts.names) {
      if (wanted.has(n)) continue;
      // Unsubscribed: forget it, so a later subscribe does not claim to hold it.
      ts.versions.delete(n);
      ts.resolved.delete(n);
    }
    ts.names = wanted;
    this.subscribe(ts);
  }

  protected answered(ts: DeltaTypeState): boolean {
    return [...ts.names].every((n) => ts.resolved.has(n));
  }

  override close(): void {
    super.close();
    this.sotw?.close();
  }
}
