import type { Host, LoadBalancer } from './types.js';

/**
 * Locality-weighted balancing (Envoy's `common_lb_config.locality_weighted_lb_config`):
 * first a locality, in proportion to its EDS `load_balancing_weight`, then a host
 * inside it with the cluster's own algorithm (`inner`, built per locality).
 *
 * Localities are chosen by smooth weighted round robin (an interleaving like
 * Envoy's EDF scheduler) among those with at least one host to pick; a locality
 * whose weight is 0 or unknown gets no traffic, as in Envoy. The caller passes the
 * hosts that may take traffic and the effective weights (host-set-lb.ts scales
 * them by min(1, 1.4 × available / total), as Envoy). Hash-based algorithms ignore locality weights (Envoy does too), so
 * the caller should not wrap them.
 */
export function createLocalityWeighted(
  hosts: readonly Host[],
  weights: ReadonlyMap<string, number>,
  inner: (hosts: readonly Host[]) => LoadBalancer,
): LoadBalancer {
  const groups = new Map<string, Host[]>();
  for (const h of hosts) {
    const l = h.locality ?? '';
    const w = weights.get(l) ?? 0;
    if (!(w > 0)) continue;
    let g = groups.get(l);
    if (g === undefined) groups.set(l, (g = []));
    g.push(h);
  }
  const localities = [...groups.entries()].map(([l, hs]) => ({ weight: weights.get(l)!, lb: inner(hs) }));
  const n = localities.length;
  if (n === 0) return { pick: () => undefined };
  if (n === 1) return localities[0]!.lb;
  const total = localities.reduce((s, l) => s + l.weight, 0);
  const current = new Float64Array(n);
  return {
    pick: (ctx) => {
      let best = 0;
      for (let i = 0; i < n; i++) {
        current[i]! += localities[i]!.weight;
        if (current[i]! > current[best]!) best = i;
      }
      current[best]! -= total;
      return localities[best]!.lb.pick(ctx);
    },
  };
}
