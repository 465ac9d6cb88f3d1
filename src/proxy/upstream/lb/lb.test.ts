// One conformance suite run against every load balancer, plus the properties
// specific to each family (distribution, least request, consistent hashing).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLoadBalancer, hash53, LB_POLICIES, type Host, type LbOptions } from './index.js';

function hosts(n: number, weights?: number[]): Host[] {
  return Array.from({ length: n }, (_, i) => ({
    address: `10.0.0.${i + 1}`, port: 8080, key: `10.0.0.${i + 1}:8080`, weight: weights?.[i] ?? 1,
    stats: { active: 0, total: 0, connectFailures: 0 },
  }));
}

/** Deterministic PRNG (mulberry32) so distributions do not flake. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const opts = (seed = 1): LbOptions => ({ minRingSize: 1024, maxRingSize: 8 << 20, maglevTableSize: 65537, leastRequestChoices: 2, random: seeded(seed) });
const HASHING = new Set(['RING_HASH', 'MAGLEV']);

function counts(hs: Host[], pick: (i: number) => Host | undefined, n: number): Map<string, number> {
  const out = new Map(hs.map((h) => [h.key, 0]));
  for (let i = 0; i < n; i++) {
    const h = pick(i);
    assert.ok(h !== undefined);
    out.set(h.key, out.get(h.key)! + 1);
  }
  return out;
}

for (const policy of LB_POLICIES) {
  describe(`${policy} (conformance)`, () => {
    // Hashing balancers spread by key; the others by successive picks.
    const ctx = (i: number): { hash?: number } => (HASHING.has(policy) ? { hash: hash53(`key-${i}`) } : {});

    test('no hosts → undefined', () => {
      assert.equal(createLoadBalancer(policy, [], opts()).pick({}), undefined);
    });

    test('one host → always that host', () => {
      const hs = hosts(1);
      const lb = createLoadBalancer(policy, hs, opts());
      for (let i = 0; i < 50; i++) assert.equal(lb.pick(ctx(i)), hs[0]);
    });

    test('equal weights spread evenly (±25 %)', () => {
      const hs = hosts(4);
      const lb = createLoadBalancer(policy, hs, opts());
      const c = counts(hs, (i) => lb.pick(ctx(i)), 8000);
      for (const [k, n] of c) assert.ok(n > 1500 && n < 2500, `${k}: ${n} of 8000`);
    });

    test('weights are honoured (1:3)', () => {
      const hs = hosts(2, [1, 3]);
      const lb = createLoadBalancer(policy, hs, opts());
      const c = counts(hs, (i) => lb.pick(ctx(i)), 8000);
      const share = c.get(hs[1]!.key)! / 8000;
      assert.ok(share > 0.68 && share < 0.82, `heavy host share ${share}`);
    });

    test('picks without a hash still return a host', () => {
      const lb = createLoadBalancer(policy, hosts(3), opts());
      for (let i = 0; i < 20; i++) assert.ok(lb.pick({}) !== undefined);
    });
  });
}

describe('ROUND_ROBIN', () => {
  test('visits hosts in turn', () => {
    const hs = hosts(3);
    const lb = createLoadBalancer('ROUND_ROBIN', hs, opts());
    const first = [0, 1, 2].map(() => lb.pick({})!.key);
    assert.equal(new Set(first).size, 3);
    assert.deepEqual([0, 1, 2].map(() => lb.pick({})!.key), first);
  });

  test('smooth weighting interleaves (no burst of 3 on the heavy host for 3:1:1... except by weight)', () => {
    const hs = hosts(3, [3, 1, 1]);
    const lb = createLoadBalancer('ROUND_ROBIN', hs, opts());
    const seq = Array.from({ length: 5 }, () => lb.pick({})!.key);
    assert.equal(seq.filter((k) => k === hs[0]!.key).length, 3);
    assert.ok(!seq.join(',').includes([hs[0]!.key, hs[0]!.key, hs[0]!.key].join(',')), seq.join(' '));
  });
});

describe('LEAST_REQUEST', () => {
  test('prefers hosts with fewer requests in flight', () => {
    const hs = hosts(4);
    hs[0]!.stats.active = 50;
    hs[1]!.stats.active = 50;
    hs[2]!.stats.active = 50;
    const lb = createLoadBalancer('LEAST_REQUEST', hs, opts());
    const c = counts(hs, () => lb.pick({}), 4000);
    // The idle host wins every pair it is sampled in: P = 1 - (3/4)^2 ≈ 0.44.
    const share = c.get(hs[3]!.key)! / 4000;
    assert.ok(share > 0.38 && share < 0.5, `idle host share ${share}`);
  });
});

for (const policy of ['RING_HASH', 'MAGLEV'] as const) {
  describe(`${policy} consistency`, () => {
    test('same key → same host, across rebuilds and host order', () => {
      const hs = hosts(5);
      const a = createLoadBalancer(policy, hs, opts(1));
      const b = createLoadBalancer(policy, [...hs].reverse(), opts(2));
      for (let i = 0; i < 500; i++) {
        const h = hash53(`user-${i}`);
        assert.equal(a.pick({ hash: h })!.key, a.pick({ hash: h })!.key);
        assert.equal(a.pick({ hash: h })!.key, b.pick({ hash: h })!.key);
      }
    });

    test('removing a host remaps only (about) its keys', () => {
      const hs = hosts(5);
      const before = createLoadBalancer(policy, hs, opts());
      const after = createLoadBalancer(policy, hs.slice(0, 4), opts());
      let moved = 0; let movedFromSurvivors = 0;
      const n = 5000;
      for (let i = 0; i < n; i++) {
        const h = hash53(`user-${i}`);
        const x = before.pick({ hash: h })!.key;
        const y = after.pick({ hash: h })!.key;
        if (x !== y) {
          moved++;
          if (x !== hs[4]!.key) movedFromSurvivors++;
        }
      }
      // Ideal: exactly the removed host's ~20 % of keys move; nobody else's.
      assert.ok(moved / n < 0.3, `moved ${moved}/${n}`);
      assert.ok(movedFromSurvivors / n < (policy === 'MAGLEV' ? 0.05 : 0.001), `moved between survivors ${movedFromSurvivors}/${n}`);
    });
  });
}
