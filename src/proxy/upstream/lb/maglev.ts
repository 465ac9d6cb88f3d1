import { hash53 } from './hash.js';
import type { Host, LoadBalancer } from './types.js';

/**
 * Maglev (Eisenbud et al., NSDI '16), weighted as in Envoy: each host walks its own
 * permutation of the table (offset, skip from two hashes of its key) and claims the
 * next free slot on its turns; heavier hosts get proportionally more turns. Lookup is
 * one array index; a host change moves few keys.
 */
export function createMaglev(hosts: readonly Host[], tableSize: number, random: () => number = Math.random): LoadBalancer {
  const n = hosts.length;
  if (n === 0) return { pick: () => undefined };
  const m = tableSize;
  // Sort by key so the table does not depend on the order EDS listed the hosts in.
  const order = hosts.map((_, i) => i).sort((a, b) => (hosts[a]!.key < hosts[b]!.key ? -1 : 1));
  const offset = order.map((i) => hash53(hosts[i]!.key, 1) % m);
  const skip = order.map((i) => (hash53(hosts[i]!.key, 2) % (m - 1)) + 1);
  const next = new Array<number>(n).fill(0);
  const maxWeight = Math.max(...hosts.map((h) => h.weight));
  const credit = new Float64Array(n);
  const table = new Int32Array(m).fill(-1);
  let filled = 0;
  while (filled < m) {
    for (let k = 0; k < n && filled < m; k++) {
      credit[k]! += hosts[order[k]!]!.weight / maxWeight;
      if (credit[k]! < 1) continue;
      credit[k]! -= 1;
      let c = (offset[k]! + next[k]! * skip[k]!) % m;
      while (table[c]! >= 0) {
        next[k]!++;
        c = (offset[k]! + next[k]! * skip[k]!) % m;
      }
      table[c] = order[k]!;
      next[k]!++;
      filled++;
    }
  }
  return {
    pick: (ctx) => {
      const key = ctx.hash ?? Math.floor(random() * 2 ** 53);
      return hosts[table[key % m]!];
    },
  };
}
