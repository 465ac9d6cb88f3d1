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
 * Locality weighting (common_lb_config.locality_weighted_lb_config): inside the
 * chosen priority level, a locality with a host left is picked by its EDS
 * load_balancing_weight, then a host in it by the cluster's algorithm
 * (lb/locality-weighted.ts; RING_HASH and MAGLEV ignore it, see docs/resilience.md). A locality
 * EDS gave no weight gets no traffic, as in Envoy. As in Envoy, a locality's weight
 * is scaled by min(1, 1.4 × available / listed hosts) (overprovisioning factor 140),
 * so a locality that lost hosts sheds load instead of piling it on its survivors.
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
    const weights = config.localityWeighted ? localityWeightsOf(set, panic ? set : hosts.filter((h) => h.priority === top && h.weight > 0)) : undefined;
    inner = createLoadBalancer(config.lbPolicy, set, weights === undefined ? opts : { ...opts, localityWeights: weights });
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

const OVERPROVISIONING = 1.4;

/**
 * Locality → effective weight over the hosts of one priority level: the EDS weight
 * (0 when EDS gave none) × min(1, 1.4 × available / all), `all` being the hosts EDS
 * listed with a weight at that level, EDS-unhealthy ones included (Envoy's rule).
 */
function localityWeightsOf(available: readonly ClusterHost[], all: readonly ClusterHost[]): Map<string, number> {
  const total = new Map<string, number>();
  for (const h of all) total.set(h.locality, (total.get(h.locality) ?? 0) + 1);
  const up = new Map<string, { weight: number; n: number }>();
  for (const h of available) {
    const e = up.get(h.locality);
    if (e === undefined) up.set(h.locality, { weight: h.localityWeight ?? 0, n: 1 });
    else e.n++;
  }
  const m = new Map<string, number>();
  for (const [l, { weight, n }] of up) m.set(l, weight * Math.min(1, (OVERPROVISIONING * n) / Math.max(n, total.get(l) ?? n)));
  return m;
}
