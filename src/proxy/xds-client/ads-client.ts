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
import * as grpc from '@grpc/grpc-js';
import { proxyAdsClientConstructor } from '../../xds/proxy-protos.js';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION, SECRET, SHORT_NAMES, type XdsTypeUrl } from '../../xds/type-urls.js';
import type { Logger } from '../../lib/log.js';
import type { ConfigState, ResourceKind } from '../config/state.js';
import { isObject } from '../config/proto-values.js';
import { createBackoff, type Backoff } from './backoff.js';
import { toStruct } from './node-metadata.js';

export interface XdsNode {
  readonly id: string;
  readonly cluster: string;
  readonly metadata: Record<string, unknown>;
  readonly locality?: { region?: string; zone?: string; sub_zone?: string };
}

/**
 * Channel credentials of the xDS stream, asked for at every (re)connect: with
 * mTLS xDS (`weft proxy --xds-tls`) they hold the current SVID, so a renewed
 * certificate is used by the next stream. Process-wide because the CLI sets it
 * before the proxy (and its lazily loaded ADS client) exists.
 */
let channelCredentials: (() => grpc.ChannelCredentials) | undefined;
export function setXdsChannelCredentials(fn: (() => grpc.ChannelCredentials) | undefined): void {
  channelCredentials = fn;
}
/** The credentials set above (the telemetry stream dials the same server with them). */
export function xdsChannelCredentials(): (() => grpc.ChannelCredentials) | undefined {
  return channelCredentials;
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

interface TypeState {
  readonly typeUrl: XdsTypeUrl;
  readonly kind: ResourceKind | 'secret';
  readonly wildcard: boolean;
  names: Set<string>;
  version: string;
  nonce: string;
  /** Whether a response of this type has been applied since start. */
  received: boolean;
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

type AdsCall = grpc.ClientDuplexStream<Record<string, unknown>, DiscoveryResponse>;

const RESOURCE_WRAPPER = 'type.googleapis.com/envoy.service.discovery.v3.Resource';

export class AdsClient {
  private readonly types: Map<string, TypeState>;
  private readonly backoff: Backoff;
  private call: AdsCall | undefined;
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

  constructor(private readonly opts: AdsClientOptions) {
    if (opts.addresses.length === 0) throw new Error('AdsClient needs at least one address');
    this.backoff = opts.backoff ?? createBackoff();
    const t = (typeUrl: XdsTypeUrl, kind: ResourceKind | 'secret', wildcard: boolean): [string, TypeState] => [typeUrl, {
      typeUrl, kind, wildcard, names: new Set(), version: '', nonce: '', received: false, seen: new Set(), subscribed: false,
    }];
    this.types = new Map([t(CLUSTER, 'cluster', true), t(CLUSTER_LOAD_ASSIGNMENT, 'endpoint', false), t(LISTENER, 'listener', true), t(ROUTE_CONFIGURATION, 'route', false)]);
    if (opts.onSecrets !== undefined) this.types.set(SECRET, t(SECRET, 'secret', false)[1]);
  }

  get isInitialized(): boolean {
    return this.initialized;
  }

  /** The server currently (or last) used. */
  get currentAddress(): string {
    return this.opts.addresses[this.addressIndex % this.opts.addresses.length]!;
  }

  start(): void {
    this.connect();
  }

  status(): AdsStatus {
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
    // protobufjs types only (no proto-loader descriptors): see src/xds/proxy-protos.ts.
    const Ctor = proxyAdsClientConstructor();
    const creds = (this.opts.credentials ?? channelCredentials)?.() ?? grpc.credentials.createInsecure();
    const client = new Ctor(address, creds, {
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.initial_reconnect_backoff_ms': 500,
    });
    this.client = client;
    const call = (client as unknown as { StreamAggregatedResources(): AdsCall }).StreamAggregatedResources();
    this.call = call;
    this.sentNode = false;
    let gotResponse = false;
    call.on('data', (msg: DiscoveryResponse) => {
      if (this.call !== call) return;
      if (!gotResponse) {
        gotResponse = true;
        this.backoff.reset();
        this.opts.log.info({ address }, 'ADS stream established');
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
      // A stream that never answered counts against this server: try the next one.
      if (!gotResponse) this.addressIndex++;
      const delay = this.backoff.next();
      this.opts.log.warn({ address, err, delayMs: delay }, `ADS stream ${why}; reconnecting`);
      this.retryTimer = setTimeout(() => this.connect(), delay);
      this.retryTimer.unref();
    };
    call.on('error', (e: Error) => lost('failed', e.message));
    call.on('end', () => lost('ended'));
    call.on('status', (s: grpc.StatusObject) => { if (s.code !== grpc.status.OK) lost('closed', s.details); });
    // Make before break: clusters first, then listeners; RDS/EDS follow from what arrives.
    for (const ts of this.types.values()) {
      ts.nonce = ''; // nonces belong to one stream (Envoy clears them on a new one); version_info stays
      if (ts.wildcard || ts.names.size > 0) this.send(ts);
    }
  }

  private send(ts: TypeState, errorDetail?: string): void {
    const call = this.call;
    if (call === undefined) return;
    const req: Record<string, unknown> = {
      version_info: ts.version,
      resource_names: ts.wildcard ? [] : [...ts.names].sort(),
      type_url: ts.typeUrl,
      response_nonce: ts.nonce,
    };
    if (!ts.wildcard && ts.names.size > 0) ts.subscribed = true;
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
    if (errorDetail !== undefined) req.error_detail = { code: grpc.status.INVALID_ARGUMENT, message: errorDetail };
    call.write(req);
  }

  private onResponse(msg: DiscoveryResponse): void {
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
    ts.version = version;
    ts.received = true;
    this.lastUpdate = Date.now();
    for (const r of resources) {
      const o = r as Record<string, unknown>;
      ts.seen.add(String(ts.kind === 'endpoint' ? o.cluster_name : o.name));
    }
    this.send(ts);
    if (ts.kind === 'cluster') this.resubscribe(CLUSTER_LOAD_ASSIGNMENT, this.opts.state.wantedEndpoints());
    if (ts.kind === 'listener') this.resubscribe(ROUTE_CONFIGURATION, this.opts.state.wantedRoutes());
    if ((ts.kind === 'cluster' || ts.kind === 'listener') && this.types.has(SECRET)) this.resubscribe(SECRET, this.opts.state.wantedSecrets());
    this.opts.onResponse?.({ typeUrl, version, accepted: true });
    this.checkInitialized();
  }

  private resubscribe(typeUrl: XdsTypeUrl, wanted: Set<string>): void {
    const ts = this.types.get(typeUrl)!;
    if (ts.kind !== 'secret') this.opts.state.retain(ts.kind as 'route' | 'endpoint', wanted);
    const same = wanted.size === ts.names.size && [...wanted].every((n) => ts.names.has(n));
    if (same) return;
    ts.names = wanted;
    for (const n of ts.seen) if (!wanted.has(n)) ts.seen.delete(n);
    if (wanted.size > 0 || ts.subscribed) this.send(ts);
  }

  private checkInitialized(): void {
    if (this.initialized) return;
    const lds = this.types.get(LISTENER)!;
    const cds = this.types.get(CLUSTER)!;
    if (!lds.received || !cds.received) return;
    const missing = [this.types.get(ROUTE_CONFIGURATION)!, this.types.get(CLUSTER_LOAD_ASSIGNMENT)!]
      .some((ts) => [...ts.names].some((n) => !ts.seen.has(n)));
    if (!missing) return this.markInitialized();
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
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    if (this.initTimer !== undefined) clearTimeout(this.initTimer);
    const call = this.call;
    this.call = undefined;
    call?.cancel();
    this.client?.close();
  }
}
