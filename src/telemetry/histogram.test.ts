import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BUCKET_COUNT, bucketIndex, bucketUpperMs, Histogram } from './histogram.js';

test('bucketIndex puts a value in the bucket whose bounds hold it', () => {
  for (const v of [0.05, 0.1, 0.11, 1, 3.7, 10, 99.9, 1000, 60_000]) {
    const i = bucketIndex(v);
    assert.ok(v <= bucketUpperMs(i), `${v} ≤ upper(${i})`);
    if (i > 0) assert.ok(v > bucketUpperMs(i - 1), `${v} > upper(${i - 1})`);
  }
  assert.equal(bucketIndex(1e9), BUCKET_COUNT - 1);
  assert.equal(bucketIndex(Number.NaN), 0);
  assert.equal(bucketIndex(-3), 0);
});

test('quantiles of a uniform 1..1000 ms sample are within a bucket of the truth', () => {
  const h = new Histogram();
  for (let v = 1; v <= 1000; v++) h.record(v);
  for (const [q, want] of [[0.5, 500], [0.95, 950], [0.99, 990]] as const) {
    const got = h.quantile(q)!;
    assert.ok(Math.abs(got - want) / want < 0.1, `p${q * 100}: ${got} vs ${want}`);
  }
  assert.equal(new Histogram().quantile(0.5), undefined);
});

test('merging histograms equals recording everything in one', () => {
  const a = new Histogram();
  const b = new Histogram();
  const all = new Histogram();
  for (let i = 0; i < 500; i++) {
    const v = (i * 7919) % 250;
    (i % 2 === 0 ? a : b).record(v);
    all.record(v);
  }
  const merged = new Histogram().merge(a).mergeSparse(b.toSparse());
  assert.deepEqual([...merged.counts], [...all.counts]);
  assert.equal(merged.total, 500);
  assert.equal(merged.quantile(0.99), all.quantile(0.99));
});

test('mergeSparse ignores indexes and counts that cannot be ours', () => {
  const h = new Histogram().mergeSparse({ buckets: [-1, BUCKET_COUNT, 1.5, 3, 4], counts: [5, 5, 5, -2, 2] });
  assert.equal(h.total, 2);
  assert.equal(h.counts[4], 2);
});
