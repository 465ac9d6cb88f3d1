/**
 * The cluster's load balancer over the hosts that may take traffic now: EDS-usable
 * (HEALTHY/UNKNOWN, weight > 0), not failing active health checks, not ejected by
 * outlier detection. Priority failover: the lowest priority level with an available
 * host takes all traffic. Panic (common_lb_config.healthy_panic_threshold, default
 * 50%): when fewer than that share of the EDS-usable hosts are available, health is
 * ignored and the lowest priority level's hosts all take traffic (Envoy's rule; Weft
 * never sends to hosts EDS itself marked unhealthy or draining — the control plane's
 * word is final).
 *
 * The algorithm's own structure (ring, table, scheduler) is rebuilt lazily, on the
 * first pick after a health change.
 */
import type { ClusterConfig, HealthStatus } from '../../config/types.js';
import { createLoadBalancer, type LbContext, type LoadBalancer } from '../lb/index.js';
import type { ClusterHost } from './cluster-manager.js';
import type { HostHealth } from './host-health.js';

const USABLE: ReadonlySet<HealthStatus> = new Set(['HEALTHY', 'UNKNOWN']);

export interface HostSetLb extends LoadBalancer {
  /** Hosts the balancer currently chooses from. */
  current(): readonly ClusterHost[];
  /** True when the last rebuild found the cluster in panic. */
  panic(): boolean;
}

export function createHostSetLb(config: ClusterConfig, hosts: readonly ClusterHost[], health: HostHealth, random?: () => number): HostSetLb {
  const candidates = hosts.filter((h) => USABLE.has(h.health) && h.weight > 0);
  let built = -1;
  let inner: LoadBalancer = { pick: () => undefined };
  let set: readonly ClusterHost[] = [];
  let panic = false;
  const opts = {
    minRingSize: config.ringHash.minRingSize,
    maxRingSize: config.ringHash.maxRingSize,
    maglevTableSize: config.maglevTableSize,
    leastRequestChoices: config.leastRequestChoices,
    random,
  };
  const rebuild = (): void => {
    built = health.version;
    const available = candidates.filter((h) => health.isAvailable(h.key));
    panic = candidates.length > 0 && available.length * 100 < config.panicThresholdPercent * candidates.length;
    const pool = panic || available.length === 0 ? (panic ? candidates : []) : available;
    const top = Math.min(...pool.map((h) => h.priority));
    set = pool.filter((h) => h.priority === top);
    inner = createLoadBalancer(config.lbPolicy, set, opts);
  };
  return {
    pick: (ctx: LbContext) => {
      if (built !== health.version) rebuild();
      return inner.pick(ctx);
    },
    current: () => { if (built !== health.version) rebuild(); return set; },
    panic: () => { if (built !== health.version) rebuild(); return panic; },
  };
}
