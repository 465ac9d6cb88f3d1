import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../lib/log.js';
import { CLUSTER, LISTENER, PUSH_ORDER, SHORT_NAMES, type XdsTypeUrl } from '../../xds/type-urls.js';
import type { RegistrationHandle, WorkloadRegistry, XdsNode } from '../registry/workload-registry.js';
import { structToJson } from '../registry/node-metadata.js';
import { META } from '../registry/node-metadata.js';
import { versionOf, type Snapshot, type SnapshotEntry, type XdsResource } from './snapshot.js';
import { encodeEntry, type EncodedAny } from './encode-cache.js';
import type { ProxyView } from './model.js';

/**
 * Aggregated Discovery Service, state of the world (Envoy's xds_protocol.rst,
 * and XDS-NOTES.md for what gRPC's client needs):
 *
 * - a stream's identity is the `node` of its first request;
 * - per type: the names subscribed (LDS/CDS: empty first request = wildcard),
 *   the nonce and version last sent, the version last ACKed, the last NACK;
 * - a request whose nonce is not the latest sent for its type is stale and is
 *   ignored (answering it makes clients loop);
 * - any request with `error_detail` is a NACK, whatever its version says; the
 *   NACKed content is not sent again, the client keeps the last ACKed;
 * - every response has a fresh nonce and carries exactly what the client asked
 *   for that exists; LDS/CDS responses carry every subscribed resource (leaving
 *   one out deletes it), so they are also sent when nothing asked for exists
 *   yet: the client then knows at once instead of after its 15 s timeout;
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
  ackedVersion?: string;
  nackedVersion?: string;
  lastNack?: { message: string; at: string; version?: string };
}

/** What one subscription receives of one type from one snapshot (see AdsStream.resolve). */
interface Resolved {
  entries: SnapshotEntry[];
  version: string;
  /** Encoded on first send. */
  resources: (EncodedAny | XdsResource)[] | undefined;
}

const EMPTY: Resolved = { entries: [], version: versionOf([]), resources: [] };

/** Per snapshot (dropped with it), per type, per subscription key. */
const resolvedCache = new WeakMap<Snapshot, Map<XdsTypeUrl, Map<string, Resolved>>>();

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
    if (names.includes('*')) st.wildcard = true;
    else if (names.length === 0 && wildcardType && (first || st.wildcard)) st.wildcard = true;
    else st.wildcard = false;
    st.names = new Set(names.filter((n) => n !== '*'));
    st.key = `${st.wildcard ? '*' : ''}\n${[...st.names].join('\n')}`;
    this.maybeSend(type, st);
  }

  private bind(node: XdsNode): void {
    this.node = node;
    const meta = structToJson(node.metadata);
    const ns = meta[META.namespace];
    this.view = { namespace: typeof ns === 'string' && ns !== '' ? ns : 'default' };
    // Proxyless gRPC (user agent "gRPC Node Pure JS", "gRPC Go", ...) gets its own view: degraded clusters.
    const agent = (node as XdsNode & { user_agent_name?: string }).user_agent_name ?? '';
    if (/^grpc\b/i.test(agent)) this.view.client = 'grpc';
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

  /**
   * What this stream would receive of `type` from the current snapshot, with
   * its version and encoded resources. Computed once per snapshot and
   * subscription and shared by every stream subscribed alike (a snapshot is
   * shared by all proxies of a view, and they mostly subscribe to the same
   * names), so a new snapshot costs one hash and one encoding per distinct
   * subscription, not per proxy.
   */
  private resolve(type: XdsTypeUrl, st: TypeState): Resolved {
    const snap = this.snapshot;
    if (snap === undefined) return EMPTY;
    let byType = resolvedCache.get(snap);
    if (byType === undefined) {
      byType = new Map();
      resolvedCache.set(snap, byType);
    }
    let byKey = byType.get(type);
    if (byKey === undefined) {
      byKey = new Map();
      byType.set(type, byKey);
    }
    let r = byKey.get(st.key);
    if (r === undefined) {
      const entries = this.wanted(snap, type, st);
      r = { entries, version: versionOf(entries), resources: undefined };
      byKey.set(st.key, r);
    }
    return r;
  }

  private wanted(snap: Snapshot, type: XdsTypeUrl, st: TypeState): SnapshotEntry[] {
    const out = new Map<string, SnapshotEntry>();
    if (st.wildcard) for (const e of snap.wildcard(type)) out.set(e.name, e);
    for (const n of st.names) {
      const e = snap.get(type, n);
      if (e) out.set(n, e);
    }
    return [...out.values()];
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
    const nonce = `${this.id}-${++this.nonceSeq}`;
    st.nonce = nonce;
    st.sentVersion = version;
    st.sent = entries;
    this.lastPushAt = new Date();
    this.server.counters.pushes++;
    this.log?.debug({ stream: this.id, type: SHORT_NAMES[type], version, nonce, count: entries.length }, 'xds: push');
    resolved.resources ??= entries.map((e) => encodeEntry(e, type));
    this.call.write({ version_info: version, resources: resolved.resources, type_url: type, nonce });
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
  private readonly streams = new Map<string, AdsStream>();
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
    const end = (): void => {
      if (!this.streams.has(s.id)) return;
      this.streams.delete(s.id);
      s.close();
    };
    call.on('data', (req: DiscoveryRequest) => {
      try {
        s.onRequest(req);
      } catch (err) {
        this.log?.error({ err, stream: s.id }, 'xds: request handling failed');
      }
    });
    call.on('end', () => {
      end();
      call.end();
    });
    call.on('error', end);
    call.on('cancelled', end);
    call.on('close', end);
  };

  /** Connected proxies, for `weft proxy-status`. */
  listClients(): ClientStatus[] {
    return [...this.streams.values()].filter((s) => s.node !== undefined).map((s) => s.status());
  }

  /** The resources last sent to a node, per type (its most recent stream). */
  configOf(nodeId: string): Partial<Record<TypeShortName, XdsResource[]>> | undefined {
    let found: AdsStream | undefined;
    for (const s of this.streams.values()) if (s.node?.id === nodeId) found = s;
    return found?.configDump();
  }

  /** Ends every stream (clients reconnect elsewhere or later). */
  closeAll(): void {
    for (const s of this.streams.values()) s.close();
    this.streams.clear();
  }
}
