import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../lib/log.js';
import { CLUSTER, LISTENER, PUSH_ORDER, SHORT_NAMES, type XdsTypeUrl } from '../../xds/type-urls.js';
import type { WorkloadRegistry, XdsNode } from '../registry/workload-registry.js';
import { resolveSubscription, subscriptionKey, versionOf, type Resolved, type Snapshot, type SnapshotEntry, type XdsResource } from './snapshot.js';
import { encodeEntry, type EncodedAny } from './encode-cache.js';
import { diffResolved } from './resolved-diff.js';
import type { ProxyView } from './model.js';
import { serveBidiStream } from './bidi-stream.js';
import { DeltaStream, type DeltaCall } from './delta-server.js';
import { XdsStreamBase } from './stream-base.js';

/**
 * Aggregated Discovery Service, state of the world (Envoy's xds_protocol.rst,
 * delta-server.ts has the incremental variant on the same snapshots;
 * and XDS-NOTES.md for what gRPC's client needs):
 *
 * - a stream's identity is the `node` of its first request;
 * - per type: the names subscribed (LDS/CDS: empty first request = wildcard),
 *   the nonce and version last sent, the version last ACKed, the last NACK;
 * - a request whose nonce is not the latest sent for its type is stale and is
 *   ignored (answering it makes clients loop);
 * - any request with `error_detail` is a NACK, whatever its version says; the
 *   NACKed content is not sent again, the client keeps the last ACKed;
 * - every response has a fresh nonce and carries only what the client asked
 *   for that exists; LDS/CDS responses carry every subscribed resource (leaving
 *   one out deletes it), so they are also sent when nothing asked for exists
 *   yet: the client then knows at once instead of after its 15 s timeout;
 *   RDS/EDS responses carry only the resources that differ from what this
 *   stream was last sent (clients keep the others: xds_protocol.rst, "Grouping
 *   resources into responses"), so one changed endpoint is one resource;
 * - a name subscribed before it exists is sent when it appears;
 * - each type is answered on its own; on a new snapshot, types go out in the
 *   make-before-break order CDS → EDS → LDS → RDS, each only if what that
 *   client would receive changed (a response's version is the hash of its content).
 */

export type TypeShortName = 'LDS' | 'RDS' | 'CDS' | 'EDS' | 'SDS';

export interface TypeStatus {
  ackedVersion?: string;
  sentVersion?: string;
  /** Names subscribed; `['*']` for a wildcard subscription. */
  subscribed: string[];
  lastNack?: { message: string; at: string; version?: string };
}

export interface ClientStatus {
  /** Stream id, unique in this process. */
  id: string;
  nodeId: string;
  /** `namespace/name` of the Workload this proxy registered, if any. */
  workload?: string;
  namespace: string;
  connectedAt: string;
  lastPushAt?: string;
  types: Partial<Record<TypeShortName, TypeStatus>>;
  /** The stream is incremental xDS (DeltaAggregatedResources). */
  delta?: boolean;
}

interface DiscoveryRequest {
  version_info?: string;
  node?: XdsNode | null;
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string } | null;
  /** resource_names as received, when discovery-request.ts decoded the request (then resource_names is decoded on first read). */
  namesBytes?: Buffer;
}

interface DiscoveryResponse {
  version_info: string;
  /** Pre-encoded Anys (encode-cache.ts): each resource is encoded once, not once per proxy. */
  resources: (EncodedAny | XdsResource)[];
  type_url: string;
  nonce: string;
}

interface TypeState {
  names: Set<string>;
  wildcard: boolean;
  /** The subscription as a string (wildcard flag and names in order): streams subscribed alike share what is resolved from a snapshot. */
  key: string;
  /** The resource_names bytes of the last request that set `names` (a copy), when it came through the wire decoder. */
  namesBytes?: Buffer;
  nonce?: string;
  sentVersion?: string;
  sent: SnapshotEntry[];
  /**
   * The resolution `sent` is the entries of (RDS/EDS responses carry only what
   * differs from it: resolved-diff.ts computes that once per pair of
   * resolutions and shares it among the streams that were sent the same one).
   */
  sentResolved?: Resolved;
  ackedVersion?: string;
  nackedVersion?: string;
  lastNack?: { message: string; at: string; version?: string };
}

/** `names` (minus `*`) lists exactly `set`, in its order (a repeated subscription). */
function sameNames(set: ReadonlySet<string>, names: readonly string[]): boolean {
  let i = 0;
  for (const n of set) {
    while (names[i] === '*') i++;
    if (names[i] !== n) return false;
    i++;
  }
  while (names[i] === '*') i++;
  return i === names.length;
}

const EMPTY: Resolved = { entries: [], version: versionOf([]), resources: [] };

/** Where snapshots come from (the SnapshotCache, or a fixed one in tests). */
export interface SnapshotSource {
  snapshot(view: ProxyView): Snapshot;
  subscribe(view: ProxyView, cb: (s: Snapshot) => void): () => void;
  /**
   * When the change that produced `s` happened (performance.now() ms: the first
   * store/registry change of the rebuild's batch); undefined for a snapshot no
   * change produced (the first one of a view). Convergence is measured from it.
   */
  changedAt?(s: Snapshot): number | undefined;
}

/** Upper bounds (seconds) of `weft_control_xds_convergence_seconds`: 1 ms to 30 s. */
export const CONVERGENCE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const;

/**
 * Change → proxy ACK times, as plain counts (one slot per bucket, the last for
 * +Inf; not cumulative). metrics.ts renders it at scrape time, so the ACK path
 * pays one short loop and no label hashing.
 */
export class ConvergenceHistogram {
  readonly counts = new Array<number>(CONVERGENCE_BUCKETS.length + 1).fill(0);
  sum = 0;
  count = 0;

  observe(seconds: number): void {
    let i = 0;
    while (i < CONVERGENCE_BUCKETS.length && seconds > CONVERGENCE_BUCKETS[i]!) i++;
    this.counts[i]!++;
    this.sum += seconds;
    this.count++;
  }
}

/** What AdsServer counts (XdsStatusSource's `counters`: the metrics read it at scrape time). */
export interface AdsCounters {
  pushes: number;
  nacks: number;
  stale: number;
  pushesByType: Partial<Record<TypeShortName, number>>;
  nacksByType: Partial<Record<TypeShortName, number>>;
  /** Streams bound to a node now, by client kind (ProxyView.client). */
  connected: Record<ClientKind, number>;
  convergence: ConvergenceHistogram;
}

export type ClientKind = 'proxy' | 'grpc';

/**
 * A change a stream was pushed and has not fully ACKed yet: `since` is the
 * change time (SnapshotSource.changedAt), `waiting` the latest nonce per type
 * still to be ACKed. Shared by the SotW and delta streams.
 */
export class Convergence {
  private since?: number;
  private readonly waiting = new Map<XdsTypeUrl, string>();

  constructor(private readonly counters: AdsCounters) {}

  /** A new snapshot reaches the stream: a change from `at` starts (an older unconverged one keeps its earlier time). */
  begin(at: number | undefined): boolean {
    if (at === undefined) return false;
    if (this.since === undefined || at < this.since) this.since = at;
    return true;
  }

  /** After the snapshot's pushes: a change that pushed nothing to this stream did not affect it. */
  settle(): void {
    if (this.waiting.size === 0) this.since = undefined;
  }

  /** A response went out while a change is pending: its ACK is needed too. */
  pushed(type: XdsTypeUrl, nonce: string): void {
    if (this.since !== undefined) this.waiting.set(type, nonce);
  }

  acked(type: XdsTypeUrl, nonce: string): void {
    if (this.since === undefined || this.waiting.get(type) !== nonce) return;
    this.waiting.delete(type);
    if (this.waiting.size > 0) return;
    this.counters.convergence.observe(Math.max(0, performance.now() - this.since) / 1000);
    this.since = undefined;
  }

  /** The client rejected part of the change: it will not converge on it (nothing observed). */
  nacked(type: XdsTypeUrl): void {
    if (!this.waiting.has(type)) return;
    this.waiting.clear();
    this.since = undefined;
  }
}

export function newAdsCounters(): AdsCounters {
  return { pushes: 0, nacks: 0, stale: 0, pushesByType: {}, nacksByType: {}, connected: { proxy: 0, grpc: 0 }, convergence: new ConvergenceHistogram() };
}

/** Counts a push or NACK in the total and in its type's total. */
export function countByType(counters: AdsCounters, what: 'pushes' | 'nacks', type: XdsTypeUrl): void {
  counters[what]++;
  const byType = what === 'pushes' ? counters.pushesByType : counters.nacksByType;
  const short = SHORT_NAMES[type] as TypeShortName;
  byType[short] = (byType[short] ?? 0) + 1;
}

export interface AdsServerOptions {
  snapshots: SnapshotSource;
  registry?: WorkloadRegistry;
  log?: Logger;
}

type AdsCall = grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;

class AdsStream extends XdsStreamBase<TypeState> {
  constructor(id: number, call: AdsCall, server: AdsServer) {
    super(id, call as grpc.ServerDuplexStream<unknown, unknown>, server);
  }

  onRequest(req: DiscoveryRequest): void {
    if (this.closed) return;
    if (this.node === undefined) {
      if (!req.node?.id) {
        this.log?.warn({ stream: this.id }, 'xds: first request without node.id; ignored');
        return;
      }
      this.bind(req.node);
    }
    const type = req.type_url as XdsTypeUrl;
    if (!PUSH_ORDER.includes(type)) {
      this.log?.debug({ stream: this.id, type: req.type_url }, 'xds: request for a type Weft does not serve');
      return;
    }
    let st = this.types.get(type);
    const first = st === undefined;
    st ??= { names: new Set(), wildcard: false, key: '', sent: [] };
    this.types.set(type, st);
    const nonce = req.response_nonce ?? '';
    if (!first && nonce !== '' && nonce !== st.nonce) { // a nonce from an earlier stream (a reconnect) is no ACK: the first request of a type subscribes
      this.server.counters.stale++;
      this.log?.debug({ stream: this.id, type: SHORT_NAMES[type], nonce, latest: st.nonce }, 'xds: stale nonce; ignored');
      return;
    }
    if (req.error_detail) {
      const message = req.error_detail.message ?? `code ${req.error_detail.code ?? '?'}`;
      st.nackedVersion = st.sentVersion;
      st.lastNack = { message, at: new Date().toISOString(), ...(st.sentVersion !== undefined ? { version: st.sentVersion } : {}) };
      countByType(this.server.counters, 'nacks', type);
      this.convergence.nacked(type);
      this.log?.warn({ stream: this.id, node: this.node?.id, type: SHORT_NAMES[type], version: st.sentVersion, message }, 'xds: NACK');
    } else if (nonce !== '') {
      st.ackedVersion = req.version_info || st.sentVersion;
      this.convergence.acked(type, nonce);
    }
    // An ACK that repeats the last request's resource_names byte for byte changes
    // neither the names nor the wildcard flag (both follow from the names and the
    // flag they set): skip decoding and comparing them (500 EDS names per ACK).
    const raw = req.namesBytes;
    if (!first && raw !== undefined && st.namesBytes !== undefined && raw.equals(st.namesBytes)) {
      this.maybeSend(type, st);
      return;
    }
    const names = req.resource_names ?? [];
    st.namesBytes = raw === undefined ? undefined : Buffer.from(raw);
    const wildcardType = type === LISTENER || type === CLUSTER;
    const wasWildcard = st.wildcard;
    if (names.includes('*')) st.wildcard = true;
    else if (names.length === 0 && wildcardType && (first || st.wildcard)) st.wildcard = true;
    else st.wildcard = false;
    // An ACK repeats the subscription (e.g. 500 EDS names): keep the set and its key
    // (the string the resolved cache is looked up by) instead of rebuilding them per ACK.
    if (first || st.wildcard !== wasWildcard || !sameNames(st.names, names)) {
      st.names = new Set(names.filter((n) => n !== '*'));
      st.key = subscriptionKey(st.wildcard, st.names);
    }
    this.maybeSend(type, st);
  }

  protected onSnapshot(s: Snapshot): void {
    if (this.closed) return;
    const prev = this.snapshot;
    this.snapshot = s;
    const timed = this.convergence.begin(this.server.snapshots.changedAt?.(s));
    for (const type of PUSH_ORDER) {
      const st = this.types.get(type);
      // A type whose table the new snapshot shares with the old one resolves as it did
      // (resolveSubscription caches by that table), and maybeSend already ran on it.
      if (st && (prev === undefined || prev.token(type) !== s.token(type))) this.maybeSend(type, st);
    }
    if (timed) this.convergence.settle();
  }

  private resolve(type: XdsTypeUrl, st: TypeState): Resolved {
    return this.snapshot === undefined ? EMPTY : resolveSubscription(this.snapshot, type, st);
  }

  private maybeSend(type: XdsTypeUrl, st: TypeState): void {
    const resolved = this.resolve(type, st);
    const entries = resolved.entries;
    const sotwComplete = type === LISTENER || type === CLUSTER;
    // RDS and EDS cannot say "does not exist": with nothing to send, stay silent.
    if (!sotwComplete && entries.length === 0) return;
    const version = resolved.version;
    if (version === st.sentVersion) return;
    if (version === st.nackedVersion) return;
    let resources: (EncodedAny | XdsResource)[];
    if (sotwComplete) {
      resolved.resources ??= entries.map((e) => encodeEntry(e, type));
      resources = resolved.resources as (EncodedAny | XdsResource)[];
    } else {
      // RDS and EDS responses need carry only what changed ("Grouping resources into
      // responses", xds_protocol.rst): clients keep the resources left out. One changed
      // endpoint is one ClusterLoadAssignment on the wire, not every one subscribed.
      const changed = st.sentResolved === undefined ? entries : diffResolved(st.sentResolved, resolved).changed;
      if (changed.length === 0) {
        // Only unsubscriptions: the client has everything it still wants.
        this.recordSent(st, resolved);
        return;
      }
      resources = changed.length === entries.length ? (resolved.resources ??= entries.map((e) => encodeEntry(e, type))) as (EncodedAny | XdsResource)[] : changed.map((e) => encodeEntry(e, type));
    }
    const nonce = `${this.id}-${++this.nonceSeq}`;
    st.nonce = nonce;
    this.recordSent(st, resolved);
    this.lastPushAt = new Date();
    countByType(this.server.counters, 'pushes', type);
    this.convergence.pushed(type, nonce);
    this.log?.debug({ stream: this.id, type: SHORT_NAMES[type], version, nonce, count: resources.length }, 'xds: push');
    this.call.write({ version_info: version, resources, type_url: type, nonce });
  }

  private recordSent(st: TypeState, resolved: Resolved): void {
    st.sentVersion = resolved.version;
    st.sent = resolved.entries;
    st.sentResolved = resolved;
  }

  configDump(): Partial<Record<TypeShortName, XdsResource[]>> {
    const out: Partial<Record<TypeShortName, XdsResource[]>> = {};
    for (const [t, st] of this.types) out[SHORT_NAMES[t] as TypeShortName] = st.sent.map((e) => e.resource);
    return out;
  }
}

/** The ADS service's state and handler. Mount `handler` as StreamAggregatedResources. */
export class AdsServer {
  readonly snapshots: SnapshotSource;
  readonly registry?: WorkloadRegistry;
  readonly log?: Logger;
  readonly counters: AdsCounters = newAdsCounters();
  private readonly streams = new Map<string, AdsStream | DeltaStream>();
  private seq = 0;

  constructor(opts: AdsServerOptions) {
    this.snapshots = opts.snapshots;
    if (opts.registry) this.registry = opts.registry;
    if (opts.log) this.log = opts.log;
  }

  /** grpc-js bidi handler for `StreamAggregatedResources`. */
  readonly handler = (call: AdsCall): void => {
    const s = new AdsStream(++this.seq, call, this);
    this.streams.set(s.id, s);
    serveBidiStream(call, { onRequest: (req) => s.onRequest(req), onEnd: () => this.endStream(s) }, this.log, { stream: s.id, what: 'xds' });
  };

  /** grpc-js bidi handler for `DeltaAggregatedResources` (delta-server.ts). */
  readonly deltaHandler = (call: DeltaCall): void => {
    const s = new DeltaStream(++this.seq, call, this);
    this.streams.set(s.id, s);
    serveBidiStream(call, { onRequest: (req) => s.onRequest(req), onEnd: () => this.endStream(s) }, this.log, { stream: s.id, what: 'xds delta' });
  };

  private endStream(s: AdsStream | DeltaStream): void {
    this.streams.delete(s.id);
    s.close();
  }

  /** Connected proxies, for `weft proxy-status`. */
  listClients(): ClientStatus[] {
    return [...this.streams.values()].filter((s) => s.node !== undefined).map((s) => s.status());
  }

  /** The resources last sent to a node, per type (its most recent stream). */
  configOf(nodeId: string): Partial<Record<TypeShortName, XdsResource[]>> | undefined {
    let found: AdsStream | DeltaStream | undefined;
    for (const s of this.streams.values()) if (s.node?.id === nodeId) found = s;
    return found?.configDump();
  }

  /** Ends every stream (clients reconnect elsewhere or later). */
  closeAll(): void {
    for (const s of this.streams.values()) s.close();
    this.streams.clear();
  }
}

