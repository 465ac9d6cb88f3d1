// The local rate limit filter on a fake clock: token bucket refills, headers, per-route buckets.
import { fixtureRequest } from '../request-fixture.js';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FilterRequest, LocalReplySpec } from '../types.js';
import { compileWithBucket, createLocalRateLimitFilter, TokenBucket } from './filter.js';

const req: FilterRequest = fixtureRequest();
const on = { default_value: { numerator: 100, denominator: 'HUNDRED' } };

describe('local rate limit', () => {
  test('token bucket: max_tokens, then tokens_per_fill every fill_interval, capped', () => {
    let now = 0;
    const b = new TokenBucket(3, 2, 1000, () => now);
    assert.deepEqual([b.take(), b.take(), b.take(), b.take()], [true, true, true, false]);
    now = 999;
    assert.equal(b.take(), false);
    now = 1000;
    assert.deepEqual([b.take(), b.take(), b.take()], [true, true, false]);
    now = 10_000;
    assert.equal(b.remaining, 3);
  });

  test('429 with flag RL, retry-after and x-ratelimit-* headers once the bucket is empty', () => {
    let now = 0;
    const deps = { now: () => now, random: Math.random };
    const rl = compileWithBucket({ stat_prefix: 's', token_bucket: { max_tokens: 2, tokens_per_fill: { value: 2 }, fill_interval: '5s' }, filter_enabled: on, filter_enforced: on }, 'p', deps);
    const f = createLocalRateLimitFilter(rl, deps);
    assert.equal(f.decodeHeaders(req, undefined), undefined);
    assert.equal(f.decodeHeaders(req, undefined), undefined);
    now = 1000;
    const r = f.decodeHeaders(req, undefined) as LocalReplySpec;
    assert.equal(r.flag, 'RL');
    assert.equal(r.status, 429);
    assert.deepEqual(r.headers, { 'x-ratelimit-limit': '2', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '4', 'retry-after': '4' });
    now = 5000;
    assert.equal(f.decodeHeaders(req, undefined), undefined);
  });

  test('no bucket (the listener-level entry the control plane emits) limits nothing; a route bucket does', () => {
    const deps = { now: () => 0, random: Math.random };
    const f = createLocalRateLimitFilter(compileWithBucket({ stat_prefix: 's' }, 'p', deps), deps);
    for (let i = 0; i < 5; i++) assert.equal(f.decodeHeaders(req, undefined), undefined);
    const route = compileWithBucket({ stat_prefix: 's', token_bucket: { max_tokens: 1, fill_interval: '60s' }, filter_enabled: on, filter_enforced: on }, 'p', deps);
    assert.equal(f.decodeHeaders(req, route), undefined);
    assert.equal((f.decodeHeaders(req, route) as LocalReplySpec).flag, 'RL');
  });

  test('enabled but not enforced: counted, not refused (filter_enforced 0%)', () => {
    const deps = { now: () => 0, random: Math.random };
    const rl = compileWithBucket({ stat_prefix: 's', token_bucket: { max_tokens: 1, fill_interval: '60s' }, filter_enabled: on }, 'p', deps);
    const f = createLocalRateLimitFilter(rl, deps);
    f.decodeHeaders(req, undefined);
    assert.equal(f.decodeHeaders(req, undefined), undefined);
    assert.equal(rl.limited, 1);
  });

  test('fill intervals under 50 ms and descriptors are refused', () => {
    const deps = { now: () => 0, random: Math.random };
    assert.throws(() => compileWithBucket({ stat_prefix: 's', token_bucket: { max_tokens: 1, fill_interval: '0.01s' } }, 'p', deps), /≥ 50ms/);
    assert.throws(() => compileWithBucket({ stat_prefix: 's', descriptors: [{}] }, 'p', deps), /descriptors: not supported/);
  });
});
