/**
 * What the state-of-the-world and the delta ADS clients share: the per-type table
 * (CDS, EDS, LDS, RDS, and SDS when secrets are wanted), one gRPC stream at a time with
 * jittered backoff rotating through the servers, the node sent on a stream's first
 * request, connection state and status, the initial fetch timeout, and close. The
 * subclasses say which stream they open, what a stream's first requests are, and how a
 * response is applied and answered.
 */
import * as grpc from '@grpc/grpc-js';
import { proxyAdsClientConstructor } from '../../xds/proxy-protos.js';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION, SECRET, SHORT_NAMES, type XdsTypeUrl } from '../../xds/type-urls.js';
import type { ResourceKind } from '../config/state.js';
import type { AdsClientOptions, AdsStatus } from './ads-client.js';
import { xdsChannelCredentials } from './channel-credentials.js';
import { createBackoff, type Backoff } from './backoff.js';
import { toStruct } from './node-metadata.js';

export interface BaseTypeState {
  readonly typeUrl: XdsTypeUrl;
  readonly kind: ResourceKind | 'secret';
  readonly wildcard: boolean;
  /** Names wanted (RDS/EDS/SDS; empty for the wildcard LDS/CDS). */
  names: Set<string>;
  /** Last accepted version. */
  version: string;
  nonce: string;
  /** Whether a response of this type has been applied since start. */
  received: boolean;
}

export type XdsCall<Res> = grpc.ClientDuplexStream<Record<string, unknown>, Res>;

export abstract class XdsClientBase<TS extends BaseTypeState, Res> {
  protected readonly types: Map<string, TS>;
  protected readonly backoff: Backoff;
  protected call: XdsCall<Res> | undefined;
  protected addressIndex = 0;
  protected closed = false;
  protected lastUpdate: number | undefined;
  private client: grpc.Client | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private initTimer: NodeJS.Timeout | undefined;
  private sentNode = false;
  private initialized = false;
  private connected = false;
  private since: number | undefined;

  /** `label`: how logs name the stream ("ADS", "delta ADS"). */
  constructor(protected readonly opts: AdsClientOptions, private readonly label: string, newState: (typeUrl: XdsTypeUrl, kind: ResourceKind | 'secret', wildcard: boolean) => TS) {
    if (opts.addresses.length === 0) throw new Error(`the ${label} client needs at least one address`);
    this.backoff = opts.backoff ?? createBackoff();
    const t = (typeUrl: XdsTypeUrl, kind: ResourceKind | 'secret', wildcard: boolean): [string, TS] => [typeUrl, newState(typeUrl, kind, wildcard)];
    // Map order is the make-before-break order of a stream's first requests: CDS, EDS, LDS, RDS, SDS.
    this.types = new Map([t(CLUSTER, 'cluster', true), t(CLUSTER_LOAD_ASSIGNMENT, 'endpoint', false), t(LISTENER, 'listener', true), t(ROUTE_CONFIGURATION, 'route', false)]);
    if (opts.onSecrets !== undefined) this.types.set(SECRET, newState(SECRET, 'secret', false));
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

  /** The bidi stream of this flavour on a fresh client. */
  protected abstract openCall(client: grpc.Client): XdsCall<Res>;
  /** A new stream is up: reset per-stream state and send the first requests. */
  protected abstract onStreamStart(): void;
  protected abstract onResponse(msg: Res): void;
  /** RDS, EDS or SDS names now wanted (from the accepted listeners and clusters). */
  protected abstract resubscribe(typeUrl: XdsTypeUrl, wanted: Set<string>): void;
  /** A stream that failed before any response: true when the subclass takes over (delta → SotW). */
  protected refused(_err: grpc.ServiceError | grpc.StatusObject | undefined): boolean {
    return false;
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
    const creds = (this.opts.credentials ?? xdsChannelCredentials())?.() ?? grpc.credentials.createInsecure();
    const client = new Ctor(address, creds, {
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.initial_reconnect_backoff_ms': 500,
    });
    this.client = client;
    const call = this.openCall(client);
    this.call = call;
    this.sentNode = false;
    let gotResponse = false;
    call.on('data', (msg: Res) => {
      if (this.call !== call) return;
      if (!gotResponse) {
        gotResponse = true;
        this.backoff.reset();
        this.opts.log.info({ address }, `${this.label} stream established`);
        this.setConnected(true, address);
      }
      this.onResponse(msg);
    });
    const lost = (why: string, err?: grpc.ServiceError | grpc.StatusObject): void => {
      if (this.call !== call) return;
      this.call = undefined;
      client.close();
      this.setConnected(false, address);
      if (this.closed) return;
      if (!gotResponse && this.refused(err)) return;
      // A stream that never answered counts against this server: try the next one.
      if (!gotResponse) this.addressIndex++;
      const delay = this.backoff.next();
      this.opts.log.warn({ address, code: err?.code, err: err?.details, delayMs: delay }, `${this.label} stream ${why}; reconnecting`);
      this.retryTimer = setTimeout(() => this.connect(), delay);
      this.retryTimer.unref();
    };
    call.on('error', (e: grpc.ServiceError) => lost('failed', e));
    call.on('end', () => lost('ended'));
    call.on('status', (s: grpc.StatusObject) => { if (s.code !== grpc.status.OK) lost('closed', s); });
    this.onStreamStart();
  }

  /** Writes a request on the current stream; the stream's first one carries the node. */
  protected write(req: Record<string, unknown>): void {
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

  /** NACK detail as Envoy sends it. */
  protected static errorDetail(message: string): { code: number; message: string } {
    return { code: grpc.status.INVALID_ARGUMENT, message };
  }

  /**
   * After an accepted response: what the accepted listeners and clusters name is
   * (un)subscribed, observers hear of it, and initialization is checked.
   */
  protected accepted(ts: TS, typeUrl: string, version: string): void {
    ts.version = version;
    ts.received = true;
    this.lastUpdate = Date.now();
    if (ts.kind === 'cluster') this.resubscribe(CLUSTER_LOAD_ASSIGNMENT, this.opts.state.wantedEndpoints());
    if (ts.kind === 'listener') this.resubscribe(ROUTE_CONFIGURATION, this.opts.state.wantedRoutes());
    if ((ts.kind === 'cluster' || ts.kind === 'listener') && this.types.has(SECRET)) this.resubscribe(SECRET, this.opts.state.wantedSecrets());
    this.opts.onResponse?.({ typeUrl, version, accepted: true });
    this.checkInitialized();
  }

  /** Drops what the config holds beyond `wanted` (RDS/EDS); secrets are not in the config state. */
  protected retain(ts: TS, wanted: Set<string>): void {
    if (ts.kind !== 'secret') this.opts.state.retain(ts.kind as 'route' | 'endpoint', wanted);
  }

  /** Whether every wanted name of `ts` has been answered (by the subclass's measure). */
  protected abstract answered(ts: TS): boolean;

  /**
   * Ready once LDS and CDS are in and every RDS/EDS name they want was answered; a name
   * that never comes stops waiting after the initial fetch timeout (Envoy: 15 s).
   */
  private checkInitialized(): void {
    if (this.initialized) return;
    const lds = this.types.get(LISTENER)!;
    const cds = this.types.get(CLUSTER)!;
    if (lds.received && cds.received && this.answered(this.types.get(ROUTE_CONFIGURATION)!) && this.answered(this.types.get(CLUSTER_LOAD_ASSIGNMENT)!)) return this.markInitialized();
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
