import { hash53 } from './hash.js';
import type { Host, LoadBalancer } from './types.js';

/**
 * Ketama-style ring (Envoy's RING_HASH): each host gets points `hash("addr:port_i")`
 * in proportion to its weight; a request goes to the first point at or after its hash.
 *
 * Envoy scales the points per unit of weight so the ring is exactly minimum_ring_size,
 * which changes every host's point count whenever a host joins or leaves and moves
 * keys between hosts that stayed. Here the points per unit of weight are rounded up
 * to a power of two, so removing or adding a host usually keeps every other host's
 * points exactly: only the keys of the host that left move (ring size ends up between
 * minimum and 2 × minimum, capped at maximum_ring_size).
 */
export function createRingHash(hosts: readonly Host[], minRingSize: number, maxRingSize: number, random: () => number = Math.random): LoadBalancer {
  const n = hosts.length;
  if (n === 0) return { pick: () => undefined };
  const minWeight = Math.min(...hosts.map((h) => h.weight));
  const units = hosts.reduce((s, h) => s + h.weight / minWeight, 0);
  let perUnit = 1;
  while (perUnit * units < minRingSize) perUnit *= 2;
  while (perUnit > 1 && perUnit * units > maxRingSize) perUnit /= 2;
  const points: { hash: number; host: number }[] = [];
  hosts.forEach((h, i) => {
    const count = Math.max(1, Math.round((h.weight / minWeight) * perUnit));
    for (let j = 0; j < count; j++) points.push({ hash: hash53(`${h.key}_${j}`), host: i });
  });
  points.sort((a, b) => a.hash - b.hash || a.host - b.host);
  const hashes = Float64Array.from(points, (p) => p.hash);
  const owners = Uint32Array.from(points, (p) => p.host);
  const size = hashes.length;
  return {
    pick: (ctx) => {
      // No hash (no policy matched): Envoy picks at random.
      const key = ctx.hash ?? Math.floor(random() * 2 ** 53);
      let lo = 0; let hi = size;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (hashes[mid]! < key) lo = mid + 1; else hi = mid;
      }
      return hosts[owners[lo === size ? 0 : lo]!];
    },
  };
}
