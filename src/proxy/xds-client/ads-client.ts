/**
 * State-of-the-world ADS client (Envoy xDS v3 over @grpc/grpc-js).
 *
 * Subscribes LDS and CDS as wildcards, then RDS and EDS by the names the accepted
 * listeners and clusters refer to. Each response is compiled as a whole: accepted →
 * ACK (version + nonce), refused → NACK (last good version + nonce + error_detail)
 * and the last good config stays. On stream loss it reconnects with jittered
 * exponential backoff, rotating through the configured servers, and resends its
 * subscriptions with the versions it holds.
 */
import type * as grpc from '@grpc/grpc-js';
import { SHORT_NAMES, type XdsTypeUrl } from '../../xds/type-urls.js';
import type { Logger } from '../../lib/log.js';
import type { ConfigState } from '../config/state.js';
import { isObject } from '../config/proto-values.js';
import type { Backoff } from './backoff.js';
import { XdsClientBase, type BaseTypeState, type XdsCall } from './client-base.js';

export { setXdsChannelCredentials, xdsChannelCredentials } from './channel-credentials.js';

export interface XdsNode {
  readonly id: string;
  readonly cluster: string;
  readonly metadata: Record<string, unknown>;
  readonly locality?: { region?: string; zone?: string; sub_zone?: string };
}

export interface AdsClientOptions {
  /** `host:port` of each control plane; tried in turn. */
  readonly addresses: readonly string[];
  /** Per-connection channel credentials; default setXdsChannelCredentials's, else plaintext. */
  readonly credentials?: () => grpc.ChannelCredentials;
  readonly node: XdsNode;
  readonly state: ConfigState;
  readonly log: Logger;
  readonly backoff?: Backoff;
  /** How long to wait for a subscribed RDS/EDS resource before going ready without it (Envoy: 15 s). */
  readonly initialFetchTimeoutMs?: number;
  /** Called once, when the first full config (LDS, CDS and what they name) is applied. */
  readonly onInitialized?: () => void;
  /** Called after every accepted or refused response (tests, metrics). */
  readonly onResponse?: (e: { typeUrl: string; version: string; accepted: boolean; error?: string }) => void;
  /**
   * SDS over ADS: the Secrets the TLS config in force names (state.wantedSecrets()), as
   * each response brings them; throw to NACK. Without it no secrets are subscribed.
   */
  readonly onSecrets?: (resources: readonly Record<string, unknown>[]) => void;
  /** Called when a stream gets its first response (connected) and when it is lost (admin /status, metrics). */
  readonly onConnectionChange?: (connected: boolean, address: string) => void;
}

/** The stream's state, for the admin `/status` endpoint and the `weft_proxy_xds_*` gauges. */
export interface AdsStatus {
  readonly connected: boolean;
  /** The server in use (or last used). */
  readonly address: string;
  /** Epoch ms: since when connected, or since when disconnected (start of the outage); undefined before the first stream answered. */
  readonly since: number | undefined;
  /** Epoch ms of the last accepted response. */
  readonly lastUpdate: number | undefined;
  /** Accepted version per short type name (CDS, EDS, LDS, RDS). */
  readonly versions: Record<string, string>;
}

interface TypeState extends BaseTypeState {
  /** Names received at least once (RDS/EDS). */
  seen: Set<string>;
  /** Whether we ever sent a non-empty name list (then an empty one means "none"). */
  subscribed: boolean;
}

interface DiscoveryResponse {
  version_info?: string;
  resources?: unknown[];
  type_url?: string;
  nonce?: string;
}

const RESOURCE_WRAPPER = 'type.googleapis.com/envoy.service.discovery.v3.Resource';

export class AdsClient extends XdsClientBase<TypeState, DiscoveryResponse> {
  constructor(opts: AdsClientOptions) {
    super(opts, 'ADS', (typeUrl, kind, wildcard) => ({
      typeUrl, kind, wildcard, names: new Set(), version: '', nonce: '', received: false, seen: new Set(), subscribed: false,
    }));
  }

  protected openCall(client: grpc.Client): XdsCall<DiscoveryResponse> {
    return (client as unknown as { StreamAggregatedResources(): XdsCall<DiscoveryResponse> }).StreamAggregatedResources();
  }

  protected onStreamStart(): void {
    // Make before break: clusters first, then listeners; RDS/EDS follow from what arrives.
    for (const ts of this.types.values()) {
      ts.nonce = ''; // nonces belong to one stream (Envoy clears them on a new one); version_info stays
      if (ts.wildcard || ts.names.size > 0) this.send(ts);
    }
  }

  private send(ts: TypeState, errorDetail?: string): void {
    if (this.call === undefined) return;
    const req: Record<string, unknown> = {
      version_info: ts.version,
      resource_names: ts.wildcard ? [] : [...ts.names].sort(),
      type_url: ts.typeUrl,
      response_nonce: ts.nonce,
    };
    if (!ts.wildcard && ts.names.size > 0) ts.subscribed = true;
    if (errorDetail !== undefined) req.error_detail = XdsClientBase.errorDetail(errorDetail);
    this.write(req);
  }

  protected onResponse(msg: DiscoveryResponse): void {
    const typeUrl = msg.type_url ?? '';
    const ts = this.types.get(typeUrl);
    const version = msg.version_info ?? '';
    const nonce = msg.nonce ?? '';
    if (ts === undefined) {
      this.opts.log.warn({ typeUrl }, 'ignoring xDS response of a type not subscribed');
      return;
    }
    ts.nonce = nonce;
    const resources: unknown[] = [];
    let error: string | undefined;
    for (const r of msg.resources ?? []) {
      let res = r;
      if (isObject(res) && res['@type'] === RESOURCE_WRAPPER) res = res.resource;
      if (!isObject(res) || res['@type'] !== typeUrl) {
        error = `resource of type ${isObject(res) ? String(res['@type']) : typeof res} in a ${SHORT_NAMES[ts.typeUrl]} response`;
        break;
      }
      if (!ts.wildcard) {
        const name = ts.kind === 'endpoint' ? res.cluster_name : res.name;
        if (typeof name !== 'string' || !ts.names.has(name)) continue; // not asked for
      }
      resources.push(res);
    }
    if (error === undefined) {
      try {
        if (ts.kind === 'secret') this.opts.onSecrets?.(resources as Record<string, unknown>[]);
        else this.opts.state.apply(ts.kind, resources, version, { full: ts.wildcard });
      } catch (e) {
        error = e instanceof Error ? e.message : String(e);
      }
    }
    if (error !== undefined) {
      this.opts.log.warn({ type: SHORT_NAMES[ts.typeUrl], version, error }, 'NACK');
      this.send(ts, error);
      this.opts.onResponse?.({ typeUrl, version, accepted: false, error });
      return;
    }
    for (const r of resources) {
      const o = r as Record<string, unknown>;
      ts.seen.add(String(ts.kind === 'endpoint' ? o.cluster_name : o.name));
    }
    // The ACK carries the accepted version.
    ts.version = version;
    this.send(ts);
    this.accepted(ts, typeUrl, version);
  }

  protected resubscribe(typeUrl: XdsTypeUrl, wanted: Set<string>): void {
    const ts = this.types.get(typeUrl)!;
    this.retain(ts, wanted);
    const same = wanted.size === ts.names.size && [...wanted].every((n) => ts.names.has(n));
    if (same) return;
    ts.names = wanted;
    for (const n of ts.seen) if (!wanted.has(n)) ts.seen.delete(n);
    if (wanted.size > 0 || ts.subscribed) this.send(ts);
  }

  protected answered(ts: TypeState): boolean {
    return [...ts.names].every((n) => ts.seen.has(n));
  }
}
