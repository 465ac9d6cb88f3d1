import type { Resource } from '../../api/types.js';
import type { ServiceSpec } from '../../api/service/service.js';
import type { WorkloadSpec } from '../../api/workload/workload.js';
import type { HTTPRouteSpec } from '../../api/httproute/httproute.js';
import type { TCPRouteSpec } from '../../api/tcproute/tcproute.js';
import type { BackendPolicySpec } from '../../api/backendpolicy/backendpolicy.js';
import { DEFAULT_MESH_NAME, type MeshSpec } from '../../api/mesh/mesh.js';
import type { SecurityPolicySpec } from '../../api/securitypolicy/securitypolicy.js';
import type { Logger } from '../../lib/log.js';
import type { ConfigStore, Watch } from '../../store/types.js';
import type { WorkloadRegistry } from '../registry/workload-registry.js';
import { CLUSTER_LOAD_ASSIGNMENT, SECRET } from '../../xds/type-urls.js';
import { rootCaSecret, type TrustBundleSource } from './sds.js';
import { buildSnapshot, endpointEntry, securedFor, type Snapshot, type SnapshotEntry } from './snapshot.js';
import { serviceTlsKey, serviceTlsOf, type ServiceTls } from './security/mesh-tls.js';
import { endpointsOf } from './endpoints.js';
import { inScope, isMember, localityKey, viewKey, WorkloadIndex, type GrpcRouteSpecLike, type MeshInput, type ProxyView, type ViewLocality } from './model.js';

export const DEFAULT_DEBOUNCE_MS = 100;
/** A rebuild waits at most this many debounce windows after the first pending change. */
export const MAX_WAIT_WINDOWS = 3;

/** Kinds that change xDS output; changes to others do not rebuild anything. */
const RELEVANT_KINDS = new Set(['Service', 'Workload', 'HTTPRoute', 'GRPCRoute', 'TCPRoute', 'BackendPolicy', 'Mesh', 'SecurityPolicy']);

export type SnapshotListener = (s: Snapshot) => void;

interface ViewState {
  view: ProxyView;
  snapshot: Snapshot;
  listeners: Set<SnapshotListener>;
  /** Listeners not yet told of `snapshot` (see notify). */
  pending: Set<SnapshotListener>;
  draining: boolean;
}

/** Listeners (streams) told of a new snapshot per turn of the event loop; see notify. */
export const NOTIFY_CHUNK = 50;

export interface SnapshotCacheOptions {
  store: ConfigStore;
  registry?: WorkloadRegistry;
  log?: Logger;
  /** Changes within this window are translated once (default 100 ms). */
  debounceMs?: number;
  /**
   * The trust bundle: every snapshot then carries the `ROOTCA` Secret (sds.ts),
   * for proxies whose TLS contexts name it with `sds_config: {ads: {}}`; a
   * bundle change (root rotation) is a full change. The workload's own
   * certificate (`default`) is never served: its key stays on the workload.
   */
  bundle?: TrustBundleSource;
}

/**
 * Keeps one snapshot per view of the mesh (the proxy's namespace, client kind
 * and scope: model.ts ProxyView) and tells the streams watching a view when it
 * changes.
 *
 * It lists the store once, then follows its watch from that revision, so no
 * change falls between the two. A burst of changes is translated once: the
 * rebuild waits `debounceMs` after the last change, but never more than
 * MAX_WAIT_WINDOWS (3) windows after the first, so a steady trickle cannot starve it. Views nobody
 * watches are dropped; per-type versions are content hashes, so the ADS
 * server re-sends only the types (and resources) that really changed.
 *
 * Rebuilds are incremental where that is cheap:
 * - the ClusterLoadAssignments of a Service are computed once (from a label
 *   index of the workloads) and shared by every view without a locality, and
 *   once per locality for views with one (their priorities depend on it:
 *   endpoints.ts), and kept across rebuilds until the Service or one of its
 *   workloads changes;
 * - when only Workloads changed (store or registry: endpoint churn), each view
 *   keeps its previous snapshot's CDS, LDS and RDS tables and gets a new EDS
 *   table with just the affected entries replaced; a view none of whose
 *   Services changed keeps its snapshot and is not notified;
 *   — unless a changed workload changes what clusters towards its Service
 *   say about mTLS (which endpoints answer it, which identities they
 *   present: security/mesh-tls.ts), which then counts as a full change;
 * - any other change (Service, routes, policies, Mesh, SecurityPolicy)
 *   retranslates every view, still reusing the EDS entries of untouched
 *   Services;
 * - a view with a `service` (a sidecar's own Service) is the view without it
 *   plus its inbound listener and clusters (snapshot.ts securedFor): the part
 *   without it is translated once per rebuild and shared (same tables) by
 *   the views of every Service.
 */
export class SnapshotCache {
  private readonly objects = new Map<string, Resource>();
  private readonly views = new Map<string, ViewState>();
  private readonly debounceMs: number;
  private watch?: Watch;
  private unsubscribeRegistry?: () => void;
  private unsubscribeBundle?: () => void;
  private timer?: NodeJS.Timeout;
  private firstDirtyAt = 0;
  /** The change time of the rebuild under way (see changedAt). */
  private rebuildChangeAt = 0;
  /** performance.now() of the first change not yet rebuilt (undefined: none pending). */
  private firstChangeAt?: number;
  /** The change time of each snapshot a rebuild made (changedAt; weak: old snapshots go with their streams). */
  private readonly changeTimes = new WeakMap<Snapshot, number>();
  private input: MeshInput = { services: [], workloads: [], httpRoutes: [], grpcRoutes: [], tcpRoutes: [], backendPolicies: [] };
  private builds = 0;
  /** A change other than to a Workload is pending: every view is retranslated. */
  private fullPending = false;
  private index = new WorkloadIndex([]);
  /** Workloads of `input`, by key (to find what changed at the next rebuild). */
  private workloadsByKey = new Map<string, Resource<WorkloadSpec>>();
  /** ServiceTls per Service (namespace/name), for the current input; cleared with the Service's EDS. */
  private tls = new Map<string, { svc: Resource<ServiceSpec>; tls: ServiceTls }>();
  /** Snapshots of views without `service`, for the rebuild under way (see build). */
  private shared = new Map<string, Snapshot>();
  /**
   * EDS entries per Service (`ns/name`), then per proxy locality ('' for views
   * without one, shared by all of them); valid for `input`.
   */
  private readonly eds = new Map<string, Map<string, { svc: Resource<ServiceSpec>; entries: readonly SnapshotEntry[] }>>();

  private constructor(private readonly opts: SnapshotCacheOptions) {
    this.debounceMs = opts.debounceMs ?? DEFAULT_DEBOUNCE_MS;
  }

  static async create(opts: SnapshotCacheOptions): Promise<SnapshotCache> {
    const c = new SnapshotCache(opts);
    await c.start();
    return c;
  }

  private async start(): Promise<void> {
    const { items, revision } = await this.opts.store.list();
    for (const o of items) if (RELEVANT_KINDS.has(o.kind)) this.objects.set(keyOf(o), o);
    this.watch = this.opts.store.watch({ fromRevision: revision }, (e) => {
      if (!RELEVANT_KINDS.has(e.object.kind)) return;
      if (e.object.kind !== 'Workload') this.fullPending = true;
      if (e.type === 'DELETED') this.objects.delete(keyOf(e.object));
      else this.objects.set(keyOf(e.object), e.object);
      this.schedule();
    });
    this.unsubscribeRegistry = this.opts.registry?.onChange(() => this.schedule());
    this.unsubscribeBundle = this.opts.bundle?.onBundleChange(() => {
      this.fullPending = true;
      this.schedule();
    });
    this.setInput(this.collect());
  }

  private setInput(input: MeshInput): void {
    this.input = input;
    this.index = new WorkloadIndex(input.workloads);
    this.workloadsByKey = new Map(input.workloads.map((w) => [nsName(w), w]));
  }

  /** ServiceTls of a Service (cached until it or one of its workloads changes). */
  private tlsFor(svc: Resource<ServiceSpec>): ServiceTls {
    const key = nsName(svc);
    let c = this.tls.get(key);
    if (c === undefined || c.svc !== svc) {
      c = { svc, tls: serviceTlsOf(this.input, svc, this.index.membersOf(svc)) };
      this.tls.set(key, c);
    }
    return c.tls;
  }

  /** EDS entries of a Service (cached; see the class comment). */
  private endpointsFor(svc: Resource<ServiceSpec>, locality: ViewLocality | undefined): readonly SnapshotEntry[] {
    const key = nsName(svc);
    let perLocality = this.eds.get(key);
    if (perLocality === undefined) this.eds.set(key, (perLocality = new Map()));
    const lkey = locality === undefined ? '' : localityKey(locality);
    let c = perLocality.get(lkey);
    if (c === undefined || c.svc !== svc) {
      c = { svc, entries: endpointsOf(svc, this.index.membersOf(svc), locality).map(endpointEntry) };
      perLocality.set(lkey, c);
    }
    return c.entries;
  }

  /** Number of translations so far (tests check debouncing with it). */
  get buildCount(): number {
    return this.builds;
  }

  /** The current snapshot of a view (built on first use). */
  snapshot(view: ProxyView): Snapshot {
    const key = viewKey(view);
    const hit = this.views.get(key);
    if (hit) return hit.snapshot;
    const snapshot = this.build(view);
    this.views.set(key, { view, snapshot, listeners: new Set(), pending: new Set(), draining: false });
    return snapshot;
  }

  /** Calls `cb` with every new snapshot of `view` (not with the current one: read that with snapshot()). */
  subscribe(view: ProxyView, cb: SnapshotListener): () => void {
    this.snapshot(view);
    const key = viewKey(view);
    const state = this.views.get(key);
    state?.listeners.add(cb);
    return () => {
      const s = this.views.get(key);
      if (!s) return;
      s.listeners.delete(cb);
      s.pending.delete(cb);
      if (s.listeners.size === 0) this.views.delete(key);
    };
  }

  /**
   * When the change that produced `s` happened (performance.now() ms; the first
   * change of its debounced batch), for the convergence histogram; undefined
   * for a view's first snapshot.
   */
  changedAt(s: Snapshot): number | undefined {
    return this.changeTimes.get(s);
  }

  /** What the generators read now (for tests and `weft describe`). */
  meshInput(): MeshInput {
    return this.input;
  }

  /** Rebuild now instead of waiting for the debounce window (tests, shutdown). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.rebuild();
  }

  close(): void {
    this.watch?.close();
    this.unsubscribeRegistry?.();
    this.unsubscribeBundle?.();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.views.clear();
  }

  private schedule(): void {
    const now = Date.now();
    this.firstChangeAt ??= performance.now();
    if (this.timer === undefined) this.firstDirtyAt = now;
    else clearTimeout(this.timer);
    const deadline = this.firstDirtyAt + this.debounceMs * MAX_WAIT_WINDOWS;
    const delay = Math.max(0, Math.min(this.debounceMs, deadline - now));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.rebuild();
    }, delay);
  }

  private rebuild(): void {
    this.rebuildChangeAt = this.firstChangeAt ?? performance.now();
    this.firstChangeAt = undefined;
    const before = this.workloadsByKey;
    const full = this.fullPending;
    this.fullPending = false;
    this.setInput(this.collect());
    // Services whose endpoints may have changed: those a changed workload belonged to, before or after.
    const changed: Resource<WorkloadSpec>[] = [];
    for (const [k, w] of this.workloadsByKey) {
      const old = before.get(k);
      if (old !== w) {
        changed.push(w);
        if (old !== undefined) changed.push(old);
      }
    }
    for (const [k, w] of before) if (!this.workloadsByKey.has(k)) changed.push(w);
    const affected = new Set<string>();
    if (changed.length > 0) {
      for (const svc of this.input.services) if (changed.some((w) => isMember(svc, w))) affected.add(nsName(svc));
    }
    for (const k of affected) this.eds.delete(k);
    // A workload change that changes mTLS towards its Service changes clusters: retranslate.
    let tlsChanged = false;
    for (const k of affected) {
      const old = this.tls.get(k);
      this.tls.delete(k);
      const svc = old === undefined ? undefined : this.input.services.find((s) => nsName(s) === k);
      if (old !== undefined && (svc === undefined || serviceTlsKey(this.tlsFor(svc)) !== serviceTlsKey(old.tls))) tlsChanged = true;
    }
    this.shared.clear();
    if (full || tlsChanged) {
      // Mesh and trust domain feed every ServiceTls; policies are cheap to redo.
      if (full) this.tls.clear();
      const live = new Set(this.input.services.map(nsName));
      for (const k of this.eds.keys()) if (!live.has(k)) this.eds.delete(k);
      for (const state of this.views.values()) this.replace(state, () => this.build(state.view));
      return;
    }
    if (affected.size === 0) return;
    // Only workloads changed: patch the EDS table of the views that see an affected Service.
    const services = this.input.services.filter((svc) => affected.has(nsName(svc)));
    for (const state of this.views.values()) {
      const visible = services.filter((svc) => inScope(state.view, svc.metadata.namespace ?? 'default', svc.metadata.name));
      if (visible.length === 0) continue;
      this.replace(state, () => {
        const patch = new Map<string, SnapshotEntry | null>();
        for (const svc of visible) {
          for (const e of this.endpointsFor(svc, state.view.locality)) if (state.snapshot.get(CLUSTER_LOAD_ASSIGNMENT, e.name)?.hash !== e.hash) patch.set(e.name, e);
        }
        if (patch.size === 0) return undefined;
        this.builds++;
        return state.snapshot.withEndpoints(patch);
      });
    }
  }

  private replace(state: ViewState, make: () => Snapshot | undefined): void {
    let next: Snapshot | undefined;
    try {
      next = make();
    } catch (err) {
      // A translation bug must not take the control plane down: keep the last good snapshot.
      this.opts.log?.error({ err, view: state.view }, 'xds: translation failed; keeping the last snapshot');
      return;
    }
    if (next === undefined) return;
    state.snapshot = next;
    this.changeTimes.set(next, this.rebuildChangeAt);
    for (const cb of state.listeners) state.pending.add(cb);
    if (!state.draining) this.notify(state);
  }

  /**
   * Tells the pending listeners of a view its current snapshot, NOTIFY_CHUNK at
   * a time, yielding (setImmediate) between chunks: with 1,000 streams on one
   * view, the pushes of one rebuild would otherwise hold the event loop for the
   * whole fan-out, delaying store writes, watch events and ACKs. The first
   * chunk runs at once. A listener still pending when a newer snapshot arrives
   * is told only of the newer one (streams diff against what they last sent,
   * so nothing is lost).
   */
  private notify(state: ViewState): void {
    state.draining = true;
    try {
      let n = 0;
      for (const cb of state.pending) {
        if (n++ >= NOTIFY_CHUNK) break;
        state.pending.delete(cb);
        cb(state.snapshot);
      }
    } finally {
      if (state.pending.size > 0 && this.views.get(viewKey(state.view)) === state) {
        setImmediate(() => this.notify(state));
      } else {
        state.pending.clear();
        state.draining = false;
      }
    }
  }

  private build(view: ProxyView): Snapshot {
    if (view.service !== undefined) {
      const { service: _own, appHost: _host, ...rest } = view;
      const key = viewKey(rest);
      // Cleared at every rebuild, so what it holds was made from the current input.
      let base = this.shared.get(key);
      if (base === undefined) {
        base = this.build(rest);
        this.shared.set(key, base);
      }
      return securedFor(base, this.input, view);
    }
    this.builds++;
    const snap = buildSnapshot(this.input, view, (svc) => this.endpointsFor(svc, view.locality), (svc) => this.tlsFor(svc));
    const bundle = this.opts.bundle?.bundlePem();
    return bundle === undefined ? snap : snap.withAdded(new Map([[SECRET, [rootCaSecret(bundle)]]]));
  }

  private collect(): MeshInput {
    const services: Resource<ServiceSpec>[] = [];
    const workloads: Resource<WorkloadSpec>[] = [];
    const httpRoutes: Resource<HTTPRouteSpec>[] = [];
    const grpcRoutes: Resource<GrpcRouteSpecLike>[] = [];
    const tcpRoutes: Resource<TCPRouteSpec>[] = [];
    const backendPolicies: Resource<BackendPolicySpec>[] = [];
    const securityPolicies: Resource<SecurityPolicySpec>[] = [];
    let mesh: Resource<MeshSpec> | undefined;
    const stored = new Set<string>();
    for (const o of this.objects.values()) {
      switch (o.kind) {
        case 'Service':
          services.push(o as Resource<ServiceSpec>);
          break;
        case 'Workload':
          workloads.push(o as Resource<WorkloadSpec>);
          stored.add(`${o.metadata.namespace ?? 'default'}/${o.metadata.name}`);
          break;
        case 'HTTPRoute':
          httpRoutes.push(o as Resource<HTTPRouteSpec>);
          break;
        case 'GRPCRoute':
          grpcRoutes.push(o as Resource<GrpcRouteSpecLike>);
          break;
        case 'TCPRoute':
          tcpRoutes.push(o as Resource<TCPRouteSpec>);
          break;
        case 'BackendPolicy':
          backendPolicies.push(o as Resource<BackendPolicySpec>);
          break;
        case 'SecurityPolicy':
          securityPolicies.push(o as Resource<SecurityPolicySpec>);
          break;
        case 'Mesh':
          if (o.metadata.name === DEFAULT_MESH_NAME) mesh = o as Resource<MeshSpec>;
          break;
      }
    }
    for (const w of this.opts.registry?.list() ?? []) {
      if (!stored.has(`${w.metadata.namespace ?? 'default'}/${w.metadata.name}`)) workloads.push(w);
    }
    return { services, workloads, httpRoutes, grpcRoutes, tcpRoutes, backendPolicies, securityPolicies, ...(mesh !== undefined ? { mesh } : {}) };
  }
}

function nsName(r: Resource): string {
  return `${r.metadata.namespace ?? 'default'}/${r.metadata.name}`;
}

function keyOf(r: Resource): string {
  return `${r.kind}/${r.metadata.namespace ?? ''}/${r.metadata.name}`;
}
