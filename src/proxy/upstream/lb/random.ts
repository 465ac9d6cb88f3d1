import type { Host, LoadBalancer } from './types.js';

/** Weighted random: cumulative weights and a binary search. */
export function createRandom(hosts: readonly Host[], random: () => number = Math.random): LoadBalancer {
  const n = hosts.length;
  if (n === 0) return { pick: () => undefined };
  const cumulative = new Float64Array(n);
  let sum = 0;
  hosts.forEach((h, i) => { sum += h.weight; cumulative[i] = sum; });
  return {
    pick: () => {
      const r = random() * sum;
      let lo = 0; let hi = n - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (cumulative[mid]! > r) hi = mid; else lo = mid + 1;
      }
      return hosts[lo];
    },
  };
}

/** Weighted random pick used by other balancers too. */
export function weightedPicker(hosts: readonly Host[], random: () => number): () => Host {
  const lb = createRandom(hosts, random);
  const equal = hosts.every((h) => h.weight === hosts[0]!.weight);
  return equal ? () => hosts[Math.floor(random() * hosts.length)]! : () => lb.pick({})!;
}
