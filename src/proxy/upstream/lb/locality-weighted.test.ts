import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLoadBalancer, hash53, type Host, type LbOptions } from './index.js';

function host(i: number, locality: string, weight = 1): Host {
  return { address: `10.0.0.${i}`, port: 80, key: `10.0.0.${i}:80`, weight, locality, stats: { active: 0, total: 0, connectFailures: 0 } };
}

const base: LbOptions = { minRingSize: 1024, maxRingSize: 8 << 20, maglevTableSize: 65537, leastRequestChoices: 2, random: () => 0.5 };

function shares(policy: Parameters<typeof createLoadBalancer>[0], hs: Host[], weights: Map<string, number>, n: number): Record<string, number> {
  const lb = createLoadBalancer(policy, hs, { ...base, localityWeights: weights });
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const h = lb.pick({});
    assert.ok(h !== undefined);
    const l = h.locality ?? '';
    out[l] = (out[l] ?? 0) + 1;
  }
  return out;
}

test('a locality is chosen by its weight, whatever its host count', () => {
  // 1 host in a/1 (weight 1), 3 in a/2 (weight 3): 25% / 75%, hosts even inside.
  const hs = [host(1, 'a/1/'), host(2, 'a/2/'), host(3, 'a/2/'), host(4, 'a/2/')];
  for (const policy of ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM'] as const) {
    assert.deepEqual(shares(policy, hs, new Map([['a/1/', 1], ['a/2/', 3]]), 400), { 'a/1/': 100, 'a/2/': 300 }, policy);
  }
  // Weights need not follow host counts: 4:1 with one host each side of 1:3.
  assert.deepEqual(shares('ROUND_ROBIN', hs, new Map([['a/1/', 4], ['a/2/', 1]]), 500), { 'a/1/': 400, 'a/2/': 100 });
});

test('localities with weight 0, no weight, or no hosts left get nothing; none left: no host', () => {
  const hs = [host(1, 'x'), host(2, 'y'), host(3, 'z')];
  assert.deepEqual(shares('ROUND_ROBIN', hs, new Map([['x', 0], ['y', 2]]), 10), { y: 10 });
  assert.deepEqual(shares('ROUND_ROBIN', hs.slice(0, 1), new Map([['x', 1], ['y', 2]]), 5), { x: 5 });
  assert.equal(createLoadBalancer('ROUND_ROBIN', hs, { ...base, localityWeights: new Map() }).pick({}), undefined);
});

test('interleaves localities (no bursts) and round-robins inside one', () => {
  const hs = [host(1, 'x'), host(2, 'y'), host(3, 'y')];
  const lb = createLoadBalancer('ROUND_ROBIN', hs, { ...base, localityWeights: new Map([['x', 1], ['y', 1]]) });
  const seq = Array.from({ length: 6 }, () => lb.pick({})!.locality);
  assert.deepEqual(seq, ['x', 'y', 'x', 'y', 'x', 'y']);
});

test('hash balancers ignore locality weights (as Envoy)', () => {
  const hs = [host(1, 'x'), host(2, 'y')];
  for (const policy of ['RING_HASH', 'MAGLEV'] as const) {
    const lb = createLoadBalancer(policy, hs, { ...base, localityWeights: new Map([['x', 1]]) });
    const seen = new Set(Array.from({ length: 200 }, (_, i) => lb.pick({ hash: hash53(`key-${i}`) })!.locality));
    assert.deepEqual([...seen].sort(), ['x', 'y'], policy);
  }
});
