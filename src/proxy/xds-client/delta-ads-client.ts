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
 * Kept from AdsClient: LDS and CDS are wildcard (empty first subscribe list, which
 * delta-server.ts reads as wildcard for those two types); a response is applied as a
 * whole or NACKed (error_detail, last good config stays); RDS/EDS/SDS names follow the
 * accepted listeners and clusters; initial fetch timeout; jittered backoff rotating
 * through the servers.
 *
 * A server that answers UNIMPLEMENTED to DeltaAggregatedResources before any response
 * (a SotW-only control plane or test double) gets state of the world instead: an
 * AdsClient with the same options takes over, starting at that server, so that delta
 * as the default never leaves a proxy without config.
 */
import * as grpc from '@grpc/grpc-js';
import { proxyAdsClientConstructor } from '../../xds/proxy-protos.js';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION, SECRET, SHORT_NAMES, type XdsTypeUrl } from '../../xds/type-urls.js';
import type { ResourceKind } from '../config/state.js';
import { isObject } from '../config/proto-values.js';
import { AdsClient, xdsChannelCredentials, type AdsClientOptions, type AdsStatus } from './ads-client.js';
import { createBackoff, type Backoff } from './backoff.js';
import { toStruct } from './node-metadata.js';

interface DeltaTypeState {
  readonly typeUrl: XdsTypeUrl;
  readonly kind: ResourceKind | 'secret';
  readonly wildcard: boolean;
  /** Names wanted (RDS/EDS/SDS). */
  names: Set<string>;
  /** Names subscribed on the current stream (what the server was told). */
  onStream: Set<string>;
  /** Whether the current stream has had this type's first request. */
  started: boolean;
  /** What this proxy holds: name → resource version (initial_resource_versions). */
  versions: Map<string, string>;
  /** Last accepted system_version_info. */
  version: string;
  nonce: string;
  /** Whether a response of this type has been applied since start. */
  received: boolean;
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

type DeltaCall = grpc.ClientDuplexStream<Record<string, unknown>, DeltaDiscoveryResponse>;

export class DeltaAdsClient {
  private readonly types: Map<string, DeltaTypeState>;
  private readonly backoff: Backoff;
  private call: DeltaCall | undefined;
  private client: grpc.Client | undefined;
  private addressIndex = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private initTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private sentNode = false;
  private initialized = false;
  private connected = false;
  private since: number | undefined;
  private lastUpdate: number | undefined;
  /** Set when the server does not serve delta xDS: everything is delegated to it. */
  private sotw: AdsClient | undefined;

  constructor(private readonly opts: AdsClientOptions) {
    if (opts.addresses.length === 0) throw new Error('DeltaAdsClient needs at least one address');
    this.backoff = opts.backoff ?? createBackoff();
    const t = (typeUrl: XdsTypeUrl, kind: ResourceKind | 'secret', wildcard: boolean): [string, DeltaTypeState] => [typeUrl, {
      typeUrl, kind, wildcard, names: new Set(), onStream: new Set(), started: false, versions: new Map(), version: '', nonce: '', received: false, resolved: new Set(),
    }];
    // Map order is the make-before-break order of the first requests: CDS, EDS, LDS, RDS, SDS.
    this.types = new Map([t(CLUSTER, 'cluster', true), t(CLUSTER_LOAD_ASSIGNMENT, 'endpoint', false), t(LISTENER, 'listener', true), t(ROUTE_CONFIGURATION, 'route', false)]);
    if (opts.onSecrets !== undefined) this.types.set(SECRET, t(SECRET, 'secret', false)[1]);
  }

  get isInitialized(): boolean {
    return this.sotw?.isInitialized ?? this.initialized;
  }

  /** The server currently (or last) used. */
  get currentAddress(): string {
    return this.sotw?.currentAddress ?? this.opts.addresses[this.addressIndex % this.opts.addresses.length]!;
  }

  /** Whether this client fell back to state of the world (the server answered UNIMPLEMENTED). */
  get protocol(): 'delta' | 'sotw' {
    return this.sotw === undefined ? 'delta' : 'sotw';
  }

  start(): void {
    this.connect();
  }

  status(): AdsStatus {
    if (this.sotw !== undefined) return this.sotw.status();
    const versions: Record<string, string> = {};
    for (const ts of this.types.values()) if (ts.received) versions[SHORT_NAMES[ts.typeUrl]] = ts.version;
    return { connected: this.connected, address: this.currentAddress, since: this.since, lastUpdate: this.lastUpdate, versions };
  }

  private setConnected(v: boolean, address: string): void {
    if (this.connected === v) return;
    this.connected = v;
    this.since = Date.now();
    this.opts.onConnectionChange?.(v, address);
  }

  private connect(): void {
    if (this.closed) return;
    const address = this.currentAddress;
    const Ctor = proxyAdsClientConstructor();
    const creds = (this.opts.credentials ?? xdsChannelCredentials())?.() ?? grpc.credentials.createInsecure();
    const client = new Ctor(address, creds, {
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.initial_reconnect_backoff_ms': 500,
    });
    this.client = client;
    const call = (client as unknown as { DeltaAggregatedResources(): DeltaCall }).DeltaAggregatedResources();
    this.call = call;
    this.sentNode = false;
    let gotResponse = false;
    call.on('data', (msg: DeltaDiscoveryResponse) => {
      if (this.call !== call) return;
      if (!gotResponse) {
        gotResponse = true;
        this.backoff.reset();
        this.opts.log.info({ address, delta: true }, 'ADS stream established');
        this.setConnected(true, address);
      }
      this.onResponse(msg);
    });
    const lost = (why: string, err?: unknown): void => {
      if (this.call !== call) return;
      this.call = undefined;
      client.close();
      this.setConnected(false, address);
      if (this.closed) return;
      if (!gotResponse && (err as { code?: unknown } | undefined)?.code === grpc.status.UNIMPLEMENTED) return this.fallBack();
      // A stream that never answered counts against this server: try the next one.
      if (!gotResponse) this.addressIndex++;
      const delay = this.backoff.next();
      const e = err as { code?: unknown; details?: unknown } | undefined;
      this.opts.log.warn({ address, code: e?.code, err: e?.details, delayMs: delay }, `delta ADS stream ${why}; reconnecting`);
      this.retryTimer = setTimeout(() => this.connect(), delay);
      this.retryTimer.unref();
    };
    call.on('error', (e: grpc.ServiceError) => lost('failed', e));
    call.on('end', () => lost('ended'));
    call.on('status', (s: grpc.StatusObject) => { if (s.code !== grpc.status.OK) lost('closed', s); });
    // Subscriptions and nonces belong to one stream; what we hold (versions) carries over.
    for (const ts of this.types.values()) {
      ts.nonce = '';
      ts.started = false;
      ts.onStream = new Set();
    }
    for (const ts of this.types.values()) if (ts.wildcard || ts.names.size > 0) this.subscribe(ts);
  }

  /** State of the world from now on, starting with the server that refused delta. */
  private fallBack(): void {
    const i = this.addressIndex % this.opts.addresses.length;
    const addresses = [...this.opts.addresses.slice(i), ...this.opts.addresses.slice(0, i)];
    this.opts.log.warn({ address: addresses[0] }, 'the xDS server does not serve delta xDS (UNIMPLEMENTED); using state of the world');
    this.sotw = new AdsClient({ ...this.opts, addresses, backoff: this.backoff });
    this.sotw.start();
  }

  private write(req: Record<string, unknown>): void {
    const call = this.call;
    if (call === undefined) return;
    if (!this.sentNode) {
      const n = this.opts.node;
      req.node = {
        id: n.id,
        cluster: n.cluster,
        metadata: toStruct(n.metadata),
        locality: n.locality ?? {},
        user_agent_name: 'weft-proxy',
        client_features: ['envoy.lb.does_not_support_overprovisioning'],
      };
      this.sentNode = true;
    }
    call.write(req);
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
    if (errorDetail !== undefined) req.error_detail = { code: grpc.status.INVALID_ARGUMENT, message: errorDetail };
    this.write(req);
  }

  private onResponse(msg: DeltaDiscoveryResponse): void {
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
    ts.version = version;
    ts.received = true;
    this.lastUpdate = Date.now();
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
    if (ts.kind === 'cluster') this.resubscribe(CLUSTER_LOAD_ASSIGNMENT, this.opts.state.wantedEndpoints());
    if (ts.kind === 'listener') this.resubscribe(ROUTE_CONFIGURATION, this.opts.state.wantedRoutes());
    if ((ts.kind === 'cluster' || ts.kind === 'listener') && this.types.has(SECRET)) this.resubscribe(SECRET, this.opts.state.wantedSecrets());
    this.opts.onResponse?.({ typeUrl, version, accepted: true });
    this.checkInitialized();
  }

  private resubscribe(typeUrl: XdsTypeUrl, wanted: Set<string>): void {
    const ts = this.types.get(typeUrl)!;
    if (ts.kind !== 'secret') this.opts.state.retain(ts.kind as 'route' | 'endpoint', wanted);
    for (const n of ts.names) {
      if (wanted.has(n)) continue;
      // Unsubscribed: forget it, so a later subscribe does not claim to hold it.
      ts.versions.delete(n);
      ts.resolved.delete(n);
    }
    ts.names = wanted;
    this.subscribe(ts);
  }

  private checkInitialized(): void {
    if (this.initialized) return;
    const lds = this.types.get(LISTENER)!;
    const cds = this.types.get(CLUSTER)!;
    const missing = !lds.received || !cds.received || [this.types.get(ROUTE_CONFIGURATION)!, this.types.get(CLUSTER_LOAD_ASSIGNMENT)!]
      .some((ts) => [...ts.names].some((n) => !ts.resolved.has(n)));
    if (!missing) return this.markInitialized();
    // Unlike SotW, a delta server sends nothing for a wildcard type it has no resources
    // of (e.g. no Service yet: no CDS response): once the server answers anything, the
    // initial fetch timeout also covers LDS and CDS, as Envoy's does.
    if (this.initTimer === undefined) {
      this.initTimer = setTimeout(() => this.markInitialized(), this.opts.initialFetchTimeoutMs ?? 15_000);
      this.initTimer.unref();
    }
  }

  private markInitialized(): void {
    if (this.initialized) return;
    this.initialized = true;
    if (this.initTimer !== undefined) clearTimeout(this.initTimer);
    this.opts.onInitialized?.();
  }

  close(): void {
    this.closed = true;
    this.sotw?.close();
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    if (this.initTimer !== undefined) clearTimeout(this.initTimer);
    const call = this.call;
    this.call = undefined;
    call?.cancel();
    this.client?.close();
  }
}
