/**
 * The proxy's configuration in force: every accepted resource (raw, for
 * /config_dump, and compiled), and the immutable Snapshot built from them. An update
 * compiles everything it brings first; any error rejects the whole update (→ NACK)
 * and leaves the last good config in force. A successful update builds a new
 * Snapshot and swaps one reference: requests already running keep the snapshot they
 * captured.
 */
import { compileCluster } from './compile-cluster.js';
import { compileLoadAssignment } from './compile-endpoints.js';
import { compileListener } from './compile-listener.js';
import { compileRouteConfig } from './compile-route.js';
import { stripOneofMarkers } from './oneof-markers.js';
import { ConfigError, isObject } from './proto-values.js';
import type { ClusterConfig, CompiledListener, CompiledRouteConfig, EndpointAssignment, ProtoJson, TlsCertificateSource, TlsValidationSource } from './types.js';
import type { ClusterManager, ClusterRuntime } from '../upstream/cluster/cluster-manager.js';

export type ResourceKind = 'listener' | 'route' | 'cluster' | 'endpoint';

export interface Entry<T> {
  readonly name: string;
  readonly raw: ProtoJson;
  readonly compiled: T;
  readonly version: string;
  readonly lastUpdated: string;
  readonly isStatic: boolean;
}

export interface ResourceTables {
  readonly listener: ReadonlyMap<string, Entry<CompiledListener | undefined>>;
  readonly route: ReadonlyMap<string, Entry<CompiledRouteConfig>>;
  readonly cluster: ReadonlyMap<string, Entry<ClusterConfig>>;
  readonly endpoint: ReadonlyMap<string, Entry<EndpointAssignment>>;
}

export interface Snapshot {
  /** Increments with every swap. */
  readonly generation: number;
  readonly listeners: ReadonlyMap<string, CompiledListener>;
  readonly routes: ReadonlyMap<string, CompiledRouteConfig>;
  readonly clusters: ReadonlyMap<string, ClusterRuntime>;
  readonly tables: ResourceTables;
  /** Last accepted version_info per kind ('' before any). */
  readonly versions: Readonly<Record<ResourceKind, string>>;
}

type Compiled = CompiledListener | undefined | CompiledRouteConfig | ClusterConfig | EndpointAssignment;

const TYPE_NAMES: Record<ResourceKind, string> = {
  listener: 'Listener', route: 'RouteConfiguration', cluster: 'Cluster', endpoint: 'ClusterLoadAssignment',
};

function nameOf(kind: ResourceKind, raw: ProtoJson): string {
  const v = kind === 'endpoint' ? raw.cluster_name : raw.name;
  return typeof v === 'string' ? v : '';
}

function compileOne(kind: ResourceKind, raw: ProtoJson): Compiled {
  switch (kind) {
    case 'listener': return compileListener(raw);
    case 'route': return compileRouteConfig(raw);
    case 'cluster': return compileCluster(raw);
    case 'endpoint': return compileLoadAssignment(raw);
  }
}

export { stripOneofMarkers } from './oneof-markers.js';

export class ConfigState {
  private tables: { [K in ResourceKind]: Map<string, Entry<Compiled>> } = {
    listener: new Map(), route: new Map(), cluster: new Map(), endpoint: new Map(),
  };
  private versions: Record<ResourceKind, string> = { listener: '', route: '', cluster: '', endpoint: '' };
  private generation = 0;
  private current: Snapshot;

  constructor(private readonly clusters: ClusterManager, private readonly onSwap: (s: Snapshot) => void = () => {}) {
    this.current = this.build();
  }

  get snapshot(): Snapshot {
    return this.current;
  }

  /**
   * Applies one xDS response's resources.
   * - `full` (LDS, CDS state of the world): dynamic resources of the kind not listed are removed.
   * - otherwise (RDS, EDS): listed resources are added or replaced.
   * - `remove` (delta xDS removed_resources): dynamic resources of those names are dropped.
   * `isStatic` marks bootstrap resources, which dynamic updates never remove or replace.
   * Throws ConfigError (nothing changes) if any resource is refused.
   */
  apply(kind: ResourceKind, resources: readonly unknown[], version: string, opts: { full: boolean; isStatic?: boolean; remove?: readonly string[] }): Snapshot {
    const isStatic = opts.isStatic ?? false;
    const now = new Date().toISOString();
    const errors: string[] = [];
    const incoming = new Map<string, Entry<Compiled>>();
    resources.forEach((r, i) => {
      const raw = isObject(r) ? r : {};
      const name = nameOf(kind, raw);
      const label = `${TYPE_NAMES[kind]} ${name === '' ? `#${i}` : JSON.stringify(name)}`;
      try {
        if (name === '') throw new ConfigError(kind === 'endpoint' ? 'cluster_name' : 'name', 'is required');
        if (incoming.has(name)) throw new ConfigError('name', 'appears twice in one response');
        const existing = this.tables[kind].get(name);
        if (existing?.isStatic && !isStatic) throw new ConfigError('name', 'a static resource of that name exists in the bootstrap');
        const stripped = stripOneofMarkers(raw) as ProtoJson;
        // Unchanged resources keep their compiled object, so clusters and LBs are not rebuilt.
        if (existing !== undefined && JSON.stringify(existing.raw) === JSON.stringify(stripped)) {
          incoming.set(name, { ...existing, version });
          return;
        }
        incoming.set(name, { name, raw: stripped, compiled: compileOne(kind, raw), version, lastUpdated: now, isStatic });
      } catch (e) {
        errors.push(`${label}: ${e instanceof Error ? e.message : String(e)}`);
      }
    });
    if (errors.length > 0) throw new ConfigError('', errors.join('; '));
    const next = new Map(opts.full ? [...this.tables[kind]].filter(([, e]) => e.isStatic) : this.tables[kind]);
    for (const [name, e] of incoming) next.set(name, e);
    // Delta xDS removed_resources: in the same swap as the additions, so a NACK undoes both.
    for (const name of opts.remove ?? []) if (next.get(name)?.isStatic === false) next.delete(name);
    const prevTables = this.tables;
    const prevVersions = this.versions;
    this.tables = { ...this.tables, [kind]: next };
    if (!isStatic) this.versions = { ...this.versions, [kind]: version };
    try {
      this.current = this.build();
    } catch (e) {
      this.tables = prevTables;
      this.versions = prevVersions;
      throw e;
    }
    this.onSwap(this.current);
    return this.current;
  }

  /** Drops RDS/EDS resources nothing refers to any more (after LDS/CDS removed their users). */
  retain(kind: 'route' | 'endpoint', names: ReadonlySet<string>): void {
    const table = this.tables[kind];
    const keep = new Map([...table].filter(([n, e]) => e.isStatic || names.has(n)));
    if (keep.size === table.size) return;
    this.tables = { ...this.tables, [kind]: keep };
    this.current = this.build();
    this.onSwap(this.current);
  }

  /** RDS names the listeners in force need. */
  wantedRoutes(): Set<string> {
    const out = new Set<string>();
    for (const e of this.tables.listener.values()) {
      const l = e.compiled as CompiledListener | undefined;
      for (const c of l?.chains ?? []) if (c.hcm?.rdsName !== undefined) out.add(c.hcm.rdsName);
    }
    return out;
  }

  /**
   * SDS names the TLS listeners and clusters in force refer to, except `default`
   * (this proxy's own SVID, made here: keys never come over the wire).
   */
  wantedSecrets(): Set<string> {
    const out = new Set<string>();
    const add = (t: { certificate?: TlsCertificateSource | undefined; validation?: TlsValidationSource | undefined } | undefined): void => {
      if (t?.certificate?.kind === 'sds' && t.certificate.name !== 'default') out.add(t.certificate.name);
      if (t?.validation?.kind === 'sds') out.add(t.validation.name);
    };
    for (const e of this.tables.listener.values()) for (const c of (e.compiled as CompiledListener | undefined)?.chains ?? []) add(c.tls);
    for (const e of this.tables.cluster.values()) add((e.compiled as ClusterConfig).tls);
    return out;
  }

  /** EDS names the clusters in force need. */
  wantedEndpoints(): Set<string> {
    const out = new Set<string>();
    for (const e of this.tables.cluster.values()) {
      const c = e.compiled as ClusterConfig;
      if (c.kind === 'EDS') out.add(c.edsName);
    }
    return out;
  }

  has(kind: ResourceKind, name: string): boolean {
    return this.tables[kind].has(name);
  }

  private build(): Snapshot {
    const listeners = new Map<string, CompiledListener>();
    for (const [n, e] of this.tables.listener) if (e.compiled !== undefined) listeners.set(n, e.compiled as CompiledListener);
    const routes = new Map<string, CompiledRouteConfig>();
    for (const [n, e] of this.tables.route) routes.set(n, e.compiled as CompiledRouteConfig);
    const clusterConfigs = new Map<string, ClusterConfig>();
    for (const [n, e] of this.tables.cluster) clusterConfigs.set(n, e.compiled as ClusterConfig);
    const endpoints = new Map<string, EndpointAssignment>();
    for (const [n, e] of this.tables.endpoint) endpoints.set(n, e.compiled as EndpointAssignment);
    const byAddress = new Map<string, string>();
    for (const l of listeners.values()) {
      if (l.port === 0) continue;
      const addr = `${l.host}:${l.port}`;
      const other = byAddress.get(addr);
      if (other !== undefined) throw new ConfigError('', `Listener ${JSON.stringify(l.name)}: address ${addr} is already used by listener ${JSON.stringify(other)}`);
      byAddress.set(addr, l.name);
    }
    return Object.freeze({
      generation: ++this.generation,
      listeners,
      routes,
      clusters: this.clusters.build(clusterConfigs, endpoints),
      tables: this.tables as ResourceTables,
      versions: this.versions,
    });
  }
}
