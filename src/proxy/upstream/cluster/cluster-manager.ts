/**
 * Turns compiled clusters + endpoint assignments into runtime clusters: the host list,
 * the load balancer over the usable hosts, the connection pool and counters.
 *
 * A runtime cluster is immutable once built; an update builds a new one (sharing the
 * pool, counters and per-host counters of the cluster with the same name) so a
 * request that captured the old snapshot keeps a consistent view.
 */
import type { ClusterConfig, EndpointAssignment, HealthStatus } from '../../config/types.js';
import type { ClusterStats, ProxyStats } from '../../stats.js';
import type { Host, HostStats } from '../lb/index.js';
import { createUpstreamPool, type UpstreamPool } from '../pool/upstream-pool.js';
import { createHostSetLb, type HostSetLb } from './host-set-lb.js';
import { ClusterResilience, type ResilienceOptions } from './resilience.js';

export interface ClusterHost extends Host {
  readonly health: HealthStatus;
  readonly priority: number;
  readonly locality: string;
  /** EDS locality weight (undefined: none given), read under locality-weighted balancing. */
  readonly localityWeight?: number | undefined;
}

export interface ClusterRuntime {
  readonly name: string;
  readonly config: ClusterConfig;
  readonly assignment: EndpointAssignment | undefined;
  /** Every host EDS listed, usable or not (for /clusters). */
  readonly hosts: readonly ClusterHost[];
  /** Hosts EDS lets take traffic (the load balancer further drops failed and ejected ones: lb.current()). */
  readonly usable: readonly ClusterHost[];
  readonly lb: HostSetLb;
  /** Outlier detection, active health checks, retry gauge; shared by every build of this cluster. */
  readonly resilience: ClusterResilience;
  readonly pool: UpstreamPool;
  readonly stats: ClusterStats;
}

interface Shared {
  pool: UpstreamPool;
  maxConnections: number;
  hostStats: Map<string, HostStats>;
  resilience: ClusterResilience;
}

const USABLE: ReadonlySet<HealthStatus> = new Set(['HEALTHY', 'UNKNOWN']);

export class ClusterManager {
  private readonly shared = new Map<string, Shared>();
  private current = new Map<string, ClusterRuntime>();

  constructor(private readonly stats: ProxyStats, private readonly resilienceOptions: ResilienceOptions = {}) {}

  /** Builds the runtime clusters for a new snapshot, reusing unchanged ones. */
  build(configs: ReadonlyMap<string, ClusterConfig>, endpoints: ReadonlyMap<string, EndpointAssignment>): Map<string, ClusterRuntime> {
    const next = new Map<string, ClusterRuntime>();
    for (const [name, config] of configs) {
      const assignment = config.kind === 'STATIC' ? config.loadAssignment : endpoints.get(config.edsName);
      const prev = this.current.get(name);
      if (prev !== undefined && prev.config === config && prev.assignment === assignment) {
        next.set(name, prev);
        continue;
      }
      next.set(name, this.buildOne(config, assignment));
    }
    for (const [name, s] of this.shared) {
      if (!next.has(name)) {
        s.pool.close();
        s.resilience.close();
        this.shared.delete(name);
      }
    }
    this.current = next;
    return next;
  }

  private buildOne(config: ClusterConfig, assignment: EndpointAssignment | undefined): ClusterRuntime {
    let shared = this.shared.get(config.name);
    if (shared !== undefined && shared.maxConnections !== config.maxConnections) {
      shared.pool.close();
      shared = { ...shared, pool: createUpstreamPool(config.maxConnections), maxConnections: config.maxConnections };
      this.shared.set(config.name, shared);
    }
    if (shared === undefined) {
      shared = {
        pool: createUpstreamPool(config.maxConnections), maxConnections: config.maxConnections, hostStats: new Map(),
        resilience: new ClusterResilience(config.name, this.stats.cluster(config.name), this.resilienceOptions),
      };
      this.shared.set(config.name, shared);
    }
    const seen = new Set<string>();
    const hosts: ClusterHost[] = [];
    for (const e of assignment?.endpoints ?? []) {
      const key = e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
      if (seen.has(key)) continue;
      seen.add(key);
      let hs = shared.hostStats.get(key);
      if (hs === undefined) {
        hs = { active: 0, total: 0, connectFailures: 0 };
        shared.hostStats.set(key, hs);
      }
      hosts.push(Object.freeze({ address: e.address, port: e.port, key, weight: e.weight, health: e.health, priority: e.priority, locality: e.locality, localityWeight: e.localityWeight, stats: hs }));
    }
    for (const key of shared.hostStats.keys()) if (!seen.has(key)) shared.hostStats.delete(key);
    // Priority failover, panic threshold and proxy-decided health live in the host-set LB.
    const usable = hosts.filter((h) => USABLE.has(h.health) && h.weight > 0);
    shared.resilience.configure(config, usable);
    const lb = createHostSetLb(config, hosts, shared.resilience.health);
    return Object.freeze({
      name: config.name, config, assignment, hosts, usable, lb, pool: shared.pool, stats: this.stats.cluster(config.name), resilience: shared.resilience,
    });
  }

  close(): void {
    for (const s of this.shared.values()) { s.pool.close(); s.resilience.close(); }
    this.shared.clear();
  }
}
