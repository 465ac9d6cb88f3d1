import type { Host, LoadBalancer } from './types.js';

/**
 * Equal weights: a rotating index. Unequal weights: smooth weighted round robin
 * (nginx's), which interleaves hosts instead of sending bursts to the heaviest one,
 * the same property Envoy's EDF scheduler gives.
 */
export function createRoundRobin(hosts: readonly Host[], random: () => number = Math.random): LoadBalancer {
  const n = hosts.length;
  if (n === 0) return { pick: () => undefined };
  // Envoy starts each new LB at a random offset, so many proxies do not all hit host 0 first.
  let next = Math.floor(random() * n);
  if (hosts.every((h) => h.weight === hosts[0]!.weight)) {
    return {
      pick: () => {
        const h = hosts[next]!;
        next = next + 1 === n ? 0 : next + 1;
        return h;
      },
    };
  }
  const current = new Float64Array(n);
  const total = hosts.reduce((s, h) => s + h.weight, 0);
  return {
    pick: () => {
      let best = 0;
      for (let i = 0; i < n; i++) {
        current[i]! += hosts[i]!.weight;
        if (current[i]! > current[best]!) best = i;
      }
      current[best]! -= total;
      return hosts[best];
    },
  };
}
