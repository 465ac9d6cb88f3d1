import type * as grpc from '@grpc/grpc-js';
import { CLUSTER, LISTENER, PUSH_ORDER, SHORT_NAMES, type XdsTypeUrl } from '../../xds/type-urls.js';
import type { XdsNode } from '../registry/workload-registry.js';
import { resolveSubscription, subscriptionKey, type Resolved, type Snapshot, type SnapshotEntry, type XdsResource } from './snapshot.js';
import { encodeEntry, type EncodedAny } from './encode-cache.js';
import { diffResolved, hashesOf } from './resolved-diff.js';
import { countByType, type AdsServer, type TypeShortName } from './ads-server.js';
import { XdsStreamBase } from './stream-base.js';

/**
 * Aggregated Discovery Service, incremental ("delta") variant
 * (DeltaAggregatedResources, xds_protocol.rst "Incremental xDS"). Same
 * snapshots, views, registry and NACK bookkeeping as state of the world
 * (ads-server.ts); what differs is what goes on the wire:
 *
 * - per type, the client adds and removes names (resource_names_subscribe /
 *   _unsubscribe); LDS and CDS are wildcard when the first request subscribes
 *   nothing, any type when `*` is subscribed (unsubscribing `*` ends it);
 * - each resource carries its own version (its content hash); a response holds
 *   only the resources whose version the client does not have, and
 *   `removed_resources` for those it had (or subscribed to) that no longer
 *   exist: one changed endpoint is one ClusterLoadAssignment per proxy;
 * - `initial_resource_versions` (first request of a type, on reconnect) says
 *   what the client already has: nothing it has at that version is sent again;
 * - every response has a fresh nonce; a request echoing it is an ACK, one with
 *   `error_detail` a NACK (recorded like SotW's: listClients()). The NACKed
 *   versions are not sent again; a later change is. A request with an old
 *   nonce is neither, but its subscription changes still count (they are
 *   increments: dropping them would lose them);
 * - system_version_info is the version of the whole subscribed set, as SotW's
 *   version_info, so status output reads the same.
 */

export interface DeltaDiscoveryRequest {
  node?: XdsNode | null;
  type_url?: string;
  resource_names_subscribe?: string[];
  resource_names_unsubscribe?: string[];
  initial_resource_versions?: Record<string, string>;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string } | null;
}

export interface DeltaResource {
  name: string;
  version: string;
  resource: EncodedAny | XdsResource;
}

export interface DeltaDiscoveryResponse {
  system_version_info: string;
  resources: DeltaResource[];
  type_url: string;
  removed_resources: string[];
  nonce: string;
}

export type DeltaCall = grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;

interface DeltaTypeState {
  wildcard: boolean;
  names: Set<string>;
  key: string;
  /** What the client has: name → version (content hash). */
  known: Map<string, string>;
  /** Subscribed names the client has been told do not exist. */
  toldAbsent: Set<string>;
  nonce?: string;
  sentVersion?: string;
  ackedVersion?: string;
  lastNack?: { message: string; at: string; version?: string };
  /** What the client was last sent, for config dumps. */
  sent: Map<string, SnapshotEntry>;
  /**
   * The resolution `known` equals (set after each maybeSend; cleared when a
   * request changes `known` otherwise). From it, what to send for a new
   * snapshot is a diff shared with every stream in the same state
   * (resolved-diff.ts), not a walk of every subscribed name per stream.
   */
  synced?: Resolved;
}

export class DeltaStream extends XdsStreamBase<DeltaTypeState> {
  constructor(id: number, call: DeltaCall, server: AdsServer) {
    super(id, call as grpc.ServerDuplexStream<unknown, unknown>, server, { delta: true });
  }

  onRequest(req: DeltaDiscoveryRequest): void {
    if (this.closed) return;
    const log = this.server.log;
    if (this.node === undefined) {
      if (!req.node?.id) {
        log?.warn({ stream: this.id }, 'xds delta: first request without node.id; ignored');
        return;
      }
      this.bind(req.node);
    }
    const type = req.type_url as XdsTypeUrl;
    if (!PUSH_ORDER.includes(type)) {
      log?.debug({ stream: this.id, type: req.type_url }, 'xds delta: request for a type Weft does not serve');
      return;
    }
    let st = this.types.get(type);
    const first = st === undefined;
    st ??= { wildcard: false, names: new Set(), key: '', known: new Map(), toldAbsent: new Set(), sent: new Map() };
    this.types.set(type, st);
    const nonce = req.response_nonce ?? '';
    const current = nonce !== '' && nonce === st.nonce;
    if (nonce !== '' && !current && !first) this.server.counters.stale++;
    if (current && req.error_detail) {
      const message = req.error_detail.message ?? `code ${req.error_detail.code ?? '?'}`;
      st.lastNack = { message, at: new Date().toISOString(), ...(st.sentVersion !== undefined ? { version: st.sentVersion } : {}) };
      countByType(this.server.counters, 'nacks', type);
      this.convergence.nacked(type);
      log?.warn({ stream: this.id, node: this.node?.id, type: SHORT_NAMES[type], version: st.sentVersion, message }, 'xds delta: NACK');
    } else if (current) {
      st.ackedVersion = st.sentVersion;
      this.convergence.acked(type, nonce);
    }
    const sub = req.resource_names_subscribe ?? [];
    const unsub = req.resource_names_unsubscribe ?? [];
    if (first || sub.length > 0 || unsub.length > 0) delete st.synced;
    if (first) {
      if (sub.length === 0 && (type === LISTENER || type === CLUSTER)) st.wildcard = true;
      for (const [name, version] of Object.entries(req.initial_resource_versions ?? {})) st.known.set(name, version);
    }
    for (const n of sub) {
      if (n === '*') st.wildcard = true;
      else st.names.add(n);
    }
    for (const n of unsub) {
      if (n === '*') st.wildcard = false;
      else {
        st.names.delete(n);
        // The client forgets it; if it still comes with the wildcard, it is sent again.
        st.known.delete(n);
        st.toldAbsent.delete(n);
        st.sent.delete(n);
      }
    }
    // An ACK changes no subscription: keep the key (a string of every name: the resolved cache's key).
    if (st.synced === undefined) st.key = subscriptionKey(st.wildcard, [...st.names].sort());
    this.maybeSend(type, st);
  }

  protected onSnapshot(s: Snapshot): void {
    if (this.closed) return;
    const prev = this.snapshot;
    this.snapshot = s;
    const timed = this.convergence.begin(this.server.snapshots.changedAt?.(s));
    for (const type of PUSH_ORDER) {
      const st = this.types.get(type);
      // A type whose table the new snapshot shares with the old one has not changed.
      if (st && (prev === undefined || prev.token(type) !== s.token(type))) this.maybeSend(type, st);
    }
    if (timed) this.convergence.settle();
  }

  private maybeSend(type: XdsTypeUrl, st: DeltaTypeState): void {
    if (this.snapshot === undefined) return;
    const resolved = resolveSubscription(this.snapshot, type, st);
    let changed: SnapshotEntry[];
    let removed: string[];
    if (st.synced !== undefined) {
      // The client has exactly st.synced: absent subscribed names were told then.
      ({ changed, removed } = diffResolved(st.synced, resolved));
    } else {
      changed = [];
      const wanted = hashesOf(resolved);
      for (const e of resolved.entries) if (st.known.get(e.name) !== e.hash) changed.push(e);
      removed = [];
      for (const name of st.known.keys()) if (!wanted.has(name)) removed.push(name);
      // Subscribed names that do not exist: say so once (the client need not wait for its timeout).
      for (const name of st.names) if (!wanted.has(name) && !st.known.has(name) && !st.toldAbsent.has(name)) removed.push(name);
    }
    st.synced = resolved;
    // The first answer of a type on a stream is sent even when empty (a resumed client
    // that is up to date, a wildcard with nothing in it): the client learns it is in sync
    // now instead of at its fetch timeout, and its ACK marks the type SYNCED.
    const firstAnswer = st.nonce === undefined;
    if (changed.length === 0 && removed.length === 0 && !firstAnswer) {
      st.sentVersion ??= resolved.version;
      return;
    }
    for (const e of changed) {
      st.known.set(e.name, e.hash);
      st.toldAbsent.delete(e.name);
      st.sent.set(e.name, e);
    }
    for (const name of removed) {
      st.known.delete(name);
      st.sent.delete(name);
      if (st.names.has(name)) st.toldAbsent.add(name);
    }
    const nonce = `${this.id}-d${++this.nonceSeq}`;
    st.nonce = nonce;
    st.sentVersion = resolved.version;
    this.lastPushAt = new Date();
    countByType(this.server.counters, 'pushes', type);
    this.convergence.pushed(type, nonce);
    this.server.log?.debug({ stream: this.id, type: SHORT_NAMES[type], version: resolved.version, nonce, changed: changed.length, removed: removed.length }, 'xds delta: push');
    this.call.write({
      system_version_info: resolved.version,
      resources: changed.map((e) => ({ name: e.name, version: e.hash, resource: encodeEntry(e, type) })),
      type_url: type,
      removed_resources: removed,
      nonce,
    });
  }

  configDump(): Partial<Record<TypeShortName, XdsResource[]>> {
    const out: Partial<Record<TypeShortName, XdsResource[]>> = {};
    for (const [t, st] of this.types) out[SHORT_NAMES[t] as TypeShortName] = [...st.sent.values()].map((e) => e.resource);
    return out;
  }
}
