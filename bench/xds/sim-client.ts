/**
 * A simulated Weft proxy on one ADS stream, speaking the protocol as
 * src/proxy/xds-client/ads-client.ts does: wildcard CDS then wildcard LDS on
 * connect; after each CDS response, EDS for every cluster; after each LDS
 * response, RDS for every route_config_name; every response ACKed with the
 * names still wanted. Responses are read with wire.ts (names only), except
 * LDS (one small resource), which is decoded in full to find the RDS names.
 */
import * as grpc from '@grpc/grpc-js';
import { adsServices } from '../../src/xds/protos.js';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION } from '../../src/xds/type-urls.js';
import { now, parseResponse, resourceName, type LightResponse } from './wire.js';

const METHOD = 'StreamAggregatedResources';
type AdsCall = grpc.ClientDuplexStream<Record<string, unknown>, LightResponse>;
type AdsStub = grpc.Client & { [METHOD](): AdsCall };

let ctor: grpc.ServiceClientConstructor | undefined;
let decodeFull: ((b: Buffer) => unknown) | undefined;

/** An ADS client class whose responses are LightResponses (requests use proto-loader's serializer). */
function lightCtor(): grpc.ServiceClientConstructor {
  if (ctor) return ctor;
  const def = adsServices().ads[METHOD];
  if (!def) throw new Error('ADS service definition has no StreamAggregatedResources');
  decodeFull = def.responseDeserialize as (b: Buffer) => unknown;
  ctor = grpc.makeGenericClientConstructor(
    {
      [METHOD]: {
        path: def.path,
        requestStream: true,
        responseStream: true,
        requestSerialize: def.requestSerialize,
        requestDeserialize: def.requestDeserialize,
        responseSerialize: (): Buffer => {
          throw new Error('a client does not serialize responses');
        },
        responseDeserialize: parseResponse,
      },
    },
    'BenchAds',
  );
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
  ) {
    const t = (url: string, wildcard: boolean): [string, TypeState] => [url, { version: '', nonce: '', names: [], wildcard, got: new Set(), received: false }];
    this.types = new Map([t(CLUSTER, true), t(CLUSTER_LOAD_ASSIGNMENT, false), t(LISTENER, true), t(ROUTE_CONFIGURATION, false)]);
  }

  get nodeId(): string {
    return `bench-proxy-${this.id}`;
  }

  start(): void {
    this.startedAt = now();
    const call = this.stub[METHOD]();
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

  private send(typeUrl: string): void {
    const ts = this.types.get(typeUrl) as TypeState;
    const req: Record<string, unknown> = { version_info: ts.version, resource_names: ts.wildcard ? [] : ts.names, type_url: typeUrl, response_nonce: ts.nonce };
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
    ts.names = wanted;
    this.send(typeUrl);
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
      collectRouteNames(decodeFull?.(r.raw), routeNames);
      ts.got = new Set(); // names are not needed for LDS
    } else {
      ts.got = new Set(r.resources.map(resourceName));
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
