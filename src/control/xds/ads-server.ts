import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../lib/log.js';
import { CLUSTER, LISTENER, PUSH_ORDER, SHORT_NAMES, type XdsTypeUrl } from '../../xds/type-urls.js';
import type { RegistrationHandle, WorkloadRegistry, XdsNode } from '../registry/workload-registry.js';
import { resolveSubscription, subscriptionKey, versionOf, type Resolved, type Snapshot, type SnapshotEntry, type XdsResource } from './snapshot.js';
import { encodeEntry, type EncodedAny } from './encode-cache.js';
import { diffResolved } from './resolved-diff.js';
import type { ProxyView } from './model.js';
import { viewOfNode } from './view-of-node.js';
import { withPeerIdentity } from './peer-identity.js';
import { serveBidiStream } from './bidi-stream.js';
import { DeltaStream, type DeltaCall } from './delta-server.js';

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
}

export interface AdsServerOptions {
  snapshots: SnapshotSource;
  registry?: WorkloadRegistry;
  log?: Logger;
}

type AdsCall = grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;

class AdsStream {
  readonly id: string;
  readonly connectedAt = new Date();
  node?: XdsNode;
  view?: ProxyView;
  registration?: RegistrationHandle;
  lastPushAt?: Date;
  readonly types = new Map<XdsTypeUrl, TypeState>();
  private snapshot?: Snapshot;
  private nonceSeq = 0;
  private unsubscribe?: () => void;
  private closed = false;

  constructor(
    id: number,
    private readonly call: AdsCall,
    private readonly server: AdsServer,
  ) {
    this.id = String(id);
  }

  get log(): Logger | undefined {
    return this.server.log;
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
      this.server.counters.nacks++;
      this.log?.warn({ stream: this.id, node: this.node?.id, type: SHORT_NAMES[type], version: st.sentVersion, message }, 'xds: NACK');
    } else if (nonce !== '') {
      st.ackedVersion = req.version_info || st.sentVersion;
    }
    const names = req.resource_names ?? [];
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

  private bind(node: XdsNode): void {
    node = withPeerIdentity(node, this.call);
    this.node = node;
    this.view = viewOfNode(node);
    this.registration = this.server.registry?.connect(node);
    this.snapshot = this.server.snapshots.snapshot(this.view);
    this.unsubscribe = this.server.snapshots.subscribe(this.view, (s) => this.onSnapshot(s));
    this.log?.info({ stream: this.id, node: node.id, workload: this.workloadName() }, 'xds: proxy connected');
  }

  workloadName(): string | undefined {
    return this.registration ? `${this.registration.namespace}/${this.registration.name}` : undefined;
  }

  private onSnapshot(s: Snapshot): void {
    if (this.closed) return;
    this.snapshot = s;
    for (const type of PUSH_ORDER) {
      const st = this.types.get(type);
      if (st) this.maybeSend(type, st);
    }
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
    this.server.counters.pushes++;
    this.log?.debug({ stream: this.id, type: SHORT_NAMES[type], version, nonce, count: resources.length }, 'xds: push');
    this.call.write({ version_info: version, resources, type_url: type, nonce });
  }

  private recordSent(st: TypeState, resolved: Resolved): void {
    st.sentVersion = resolved.version;
    st.sent = resolved.entries;
    st.sentResolved = resolved;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe?.();
    if (this.registration) this.server.registry?.release(this.registration);
    this.log?.info({ stream: this.id, node: this.node?.id }, 'xds: proxy disconnected');
  }

  status(): ClientStatus {
    const types: ClientStatus['types'] = {};
    for (const [t, st] of this.types) {
      const s: TypeStatus = { subscribed: st.wildcard ? ['*', ...st.names] : [...st.names] };
      if (st.ackedVersion !== undefined) s.ackedVersion = st.ackedVersion;
      if (st.sentVersion !== undefined) s.sentVersion = st.sentVersion;
      if (st.lastNack !== undefined) s.lastNack = { ...st.lastNack };
      types[SHORT_NAMES[t] as TypeShortName] = s;
    }
    const out: ClientStatus = {
      id: this.id,
      nodeId: this.node?.id ?? '',
      namespace: this.view?.namespace ?? 'default',
      connectedAt: this.connectedAt.toISOString(),
      types,
    };
    const w = this.workloadName();
    if (w !== undefined) out.workload = w;
    if (this.lastPushAt) out.lastPushAt = this.lastPushAt.toISOString();
    return out;
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
  readonly counters = { pushes: 0, nacks: 0, stale: 0 };
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

