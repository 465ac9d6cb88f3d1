import { weightedPicker } from './random.js';
import type { Host, LoadBalancer } from './types.js';

/**
 * Power of `choices` random choices (Envoy's default is two): sample hosts (weighted
 * by their weight), keep the one with the fewest requests in flight relative to its
 * weight. Cheap, and avoids the herding of "always the global least".
 */
export function createLeastRequest(hosts: readonly Host[], choices: number, random: () => number = Math.random): LoadBalancer {
  const n = hosts.length;
  if (n === 0) return { pick: () => undefined };
  if (n === 1) return { pick: () => hosts[0] };
  const sample = weightedPicker(hosts, random);
  return {
    pick: () => {
      let best = sample();
      let bestScore = best.stats.active / best.weight;
      for (let i = 1; i < choices; i++) {
        const h = sample();
        const score = h.stats.active / h.weight;
        if (score < bestScore) { best = h; bestScore = score; }
      }
      return best;
    },
  };
}
