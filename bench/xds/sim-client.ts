/**
 * A simulated Weft proxy on one ADS stream, speaking the protocol as
 * src/proxy/xds-client/ads-client.ts does: wildcard CDS then wildcard LDS on
 * connect; after each CDS response, EDS for every cluster; after each LDS
 * response, RDS for every route_config_name; every response ACKed with the
 * names still wanted. Responses are read with wire.ts (names only), except
 * LDS (one small resource), which is decoded in full to find the RDS names.
 *
 * With `delta`, the same over DeltaAggregatedResources: wildcard CDS and LDS
 * (empty first subscribe), EDS/RDS names subscribed and unsubscribed as they
 * come and go, each response ACKed by its nonce; what the client holds is the
 * union of what it was sent minus removed_resources.
 */
import * as grpc from '@grpc/grpc-js';
import { adsServices, envoyPackageDefinition } from '../../src/xds/protos.js';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION } from '../../src/xds/type-urls.js';
import { now, parseDeltaResponse, parseResponse, resourceName, type LightResponse } from './wire.js';

const METHOD = 'StreamAggregatedResources';
const DELTA = 'DeltaAggregatedResources';
type AdsCall = grpc.ClientDuplexStream<Record<string, unknown>, LightResponse>;
type AdsStub = grpc.Client & { [METHOD](): AdsCall; [DELTA](): AdsCall };

let ctor: grpc.ServiceClientConstructor | undefined;
let decodeFull: ((b: Buffer) => unknown) | undefined;
let decodeListener: ((b: Buffer) => unknown) | undefined;

/** An ADS client class whose responses are LightResponses (requests use proto-loader's serializer). */
function lightCtor(): grpc.ServiceClientConstructor {
  if (ctor) return ctor;
  const def = adsServices().ads[METHOD];
  const delta = adsServices().ads[DELTA];
  if (!def || !delta) throw new Error('ADS service definition has no StreamAggregatedResources / DeltaAggregatedResources');
  decodeFull = def.responseDeserialize as (b: Buffer) => unknown;
  const listener = envoyPackageDefinition()['envoy.config.listener.v3.Listener'] as unknown as { deserialize: (b: Buffer) => unknown };
  decodeListener = (b) => listener.deserialize(b);
  const light = (d: typeof def, parse: (b: Buffer) => LightResponse): grpc.MethodDefinition<unknown, LightResponse> => ({
    path: d.path,
    requestStream: true,
    responseStream: true,
    requestSerialize: d.requestSerialize,
    requestDeserialize: d.requestDeserialize,
    responseSerialize: (): Buffer => {
      throw new Error('a client does not serialize responses');
    },
    responseDeserialize: parse,
  });
  ctor = grpc.makeGenericClientConstructor({ [METHOD]: light(def, parseResponse), [DELTA]: light(delta, parseDeltaResponse) }, 'BenchAds');
  return ctor;
}

/** A channel, shared by `share` simulated proxies (1 = a TCP connection per proxy, as in a mesh). */
export function newChannel(address: string): AdsStub {
  const C = lightCtor();
  // A local subchannel pool, or grpc-js would put every client on one TCP connection.
  return new C(address, grpc.credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1,
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.keepalive_time_ms': 30_000,
  }) as unknown as AdsStub;
}

interface TypeState {
  version: string;
  nonce: string;
  names: string[];
  wildcard: boolean;
  /** Resource names in the last response. */
  got: Set<string>;
  received: boolean;
}

export interface SimEvents {
  /** Called after the client ACKed an RDS response; `raw` is the response. */
  onRds?(c: SimClient, r: LightResponse, ackAt: number): void;
  /** Called after the client ACKed an EDS response. */
  onEds?(c: SimClient, r: LightResponse, ackAt: number): void;
  onFullConfig?(c: SimClient): void;
  onError?(c: SimClient, err: string): void;
}

function collectRouteNames(v: unknown, out: Set<string>, depth = 0): void {
  if (depth > 20 || v === null || typeof v !== 'object') return;
  if (Array.isArray(v)) {
    for (const x of v) collectRouteNames(x, out, depth + 1);
    return;
  }
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (k === 'route_config_name' && typeof x === 'string') out.add(x);
    else collectRouteNames(x, out, depth + 1);
  }
}

export class SimClient {
  startedAt = 0;
  fullAt = 0;
  responses = 0;
  bytes = 0;
  ended = false;
  error?: string;
  /** Per churn change k: when this client ACKed an EDS response holding it (0: not yet). */
  churnSeenAt: Float64Array = new Float64Array(0);
  /** Index below which every churn change has been seen. */
  churnLow = 0;
  private call?: AdsCall;
  private sentNode = false;
  private readonly types = new Map<string, TypeState>();

  constructor(
    readonly id: number,
    private readonly stub: AdsStub,
    private readonly events: SimEvents,
    private readonly delta = false,
  ) {
    const t = (url: string, wildcard: boolean): [string, TypeState] => [url, { version: '', nonce: '', names: [], wildcard, got: new Set(), received: false }];
    this.types = new Map([t(CLUSTER, true), t(CLUSTER_LOAD_ASSIGNMENT, false), t(LISTENER, true), t(ROUTE_CONFIGURATION, false)]);
  }

  get nodeId(): string {
    return `bench-proxy-${this.id}`;
  }

  start(): void {
    this.startedAt = now();
    const call = this.delta ? this.stub[DELTA]() : this.stub[METHOD]();
    this.call = call;
    call.on('data', (r: LightResponse) => {
      try {
        this.onResponse(r);
      } catch (err) {
        this.fail(`bad response: ${(err as Error).message}`);
      }
    });
    call.on('error', (e: Error) => this.fail(e.message));
    call.on('end', () => {
      this.ended = true;
    });
    this.send(CLUSTER);
    this.send(LISTENER);
  }

  private fail(msg: string): void {
    if (this.ended) return;
    this.ended = true;
    this.error = msg;
    this.events.onError?.(this, msg);
  }

  private send(typeUrl: string, change?: { subscribe: string[]; unsubscribe: string[] }): void {
    const ts = this.types.get(typeUrl) as TypeState;
    const req: Record<string, unknown> = this.delta
      ? { type_url: typeUrl, response_nonce: ts.nonce, resource_names_subscribe: change?.subscribe ?? [], resource_names_unsubscribe: change?.unsubscribe ?? [] }
      : { version_info: ts.version, resource_names: ts.wildcard ? [] : ts.names, type_url: typeUrl, response_nonce: ts.nonce };
    if (!this.sentNode) {
      req.node = { id: this.nodeId, cluster: 'bench', locality: {}, user_agent_name: 'weft-bench', metadata: { fields: { WEFT_NAMESPACE: { stringValue: 'default' } } } };
      this.sentNode = true;
    }
    this.call?.write(req);
  }

  private resubscribe(typeUrl: string, wanted: string[]): void {
    const ts = this.types.get(typeUrl) as TypeState;
    wanted.sort();
    if (wanted.length === ts.names.length && wanted.every((n, i) => n === ts.names[i])) return;
    const now = new Set(wanted);
    const old = new Set(ts.names);
    ts.names = wanted;
    for (const n of ts.got) if (!now.has(n)) ts.got.delete(n);
    if (this.delta) this.send(typeUrl, { subscribe: wanted.filter((n) => !old.has(n)), unsubscribe: [...old].filter((n) => !now.has(n)) });
    else this.send(typeUrl);
  }

  private onResponse(r: LightResponse): void {
    if (this.ended) return;
    this.responses++;
    this.bytes += r.raw.length;
    const ts = this.types.get(r.typeUrl);
    if (!ts) return;
    ts.nonce = r.nonce;
    ts.version = r.versionInfo;
    ts.received = true;
    let routeNames: Set<string> | undefined;
    if (r.typeUrl === LISTENER) {
      routeNames = new Set();
      if (this.delta) for (const res of r.resources) collectRouteNames(decodeListener?.(res), routeNames);
      else collectRouteNames(decodeFull?.(r.raw), routeNames);
      ts.got = new Set(); // names are not needed for LDS
    } else if (this.delta) {
      for (const res of r.resources) ts.got.add(resourceName(res));
      for (const n of (r as LightResponse & { removed?: string[] }).removed ?? []) ts.got.delete(n);
    } else if (ts.wildcard) {
      ts.got = new Set(r.resources.map(resourceName));
    } else {
      // RDS/EDS responses carry what changed; the rest is kept.
      for (const res of r.resources) ts.got.add(resourceName(res));
    }
    this.send(r.typeUrl); // ACK
    const ackAt = now();
    if (r.typeUrl === CLUSTER) this.resubscribe(CLUSTER_LOAD_ASSIGNMENT, [...ts.got]);
    else if (routeNames) this.resubscribe(ROUTE_CONFIGURATION, [...routeNames]);
    else if (r.typeUrl === ROUTE_CONFIGURATION) this.events.onRds?.(this, r, ackAt);
    else if (r.typeUrl === CLUSTER_LOAD_ASSIGNMENT) this.events.onEds?.(this, r, ackAt);
    if (this.fullAt === 0 && this.isFull()) {
      this.fullAt = ackAt;
      this.events.onFullConfig?.(this);
    }
  }

  /** LDS and CDS received, and every EDS/RDS name wanted has arrived (all ACKed). */
  private isFull(): boolean {
    const cds = this.types.get(CLUSTER) as TypeState;
    const lds = this.types.get(LISTENER) as TypeState;
    if (!cds.received || !lds.received) return false;
    for (const t of [CLUSTER_LOAD_ASSIGNMENT, ROUTE_CONFIGURATION]) {
      const ts = this.types.get(t) as TypeState;
      if (ts.names.length === 0 && t === ROUTE_CONFIGURATION) return false; // the outbound listener always names a route
      for (const n of ts.names) if (!ts.got.has(n)) return false;
    }
    return true;
  }

  close(): void {
    this.ended = true;
    this.call?.cancel();
  }
}
