// retry_on conditions against attempt outcomes (Envoy's table).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { RetryOn } from '../../config/types.js';
import { retriable } from './retry-loop.js';

const on = (...c: RetryOn[]): ReadonlySet<RetryOn> => new Set(c);
const resp = (status: number, grpcStatus?: number) => ({ kind: 'response', status, grpcStatus }) as const;
const none: ReadonlySet<number> = new Set();

describe('retry_on', () => {
  test('5xx covers every 5xx and every reset, timeout and connect failure', () => {
    for (const o of [resp(500), resp(503), resp(599), { kind: 'reset' }, { kind: 'connect-failure' }, { kind: 'refused-stream' }, { kind: 'per-try-timeout' }] as const) assert.ok(retriable(on('5xx'), none, o), JSON.stringify(o));
    assert.ok(!retriable(on('5xx'), none, resp(404)));
  });
  test('gateway-error: 502/503/504 only', () => {
    assert.deepEqual([500, 502, 503, 504].map((s) => retriable(on('gateway-error'), none, resp(s))), [false, true, true, true]);
  });
  test('connect-failure and refused-stream are narrow', () => {
    assert.ok(retriable(on('connect-failure'), none, { kind: 'connect-failure' }));
    assert.ok(!retriable(on('connect-failure'), none, { kind: 'reset' }));
    assert.ok(!retriable(on('connect-failure'), none, resp(503)));
    assert.ok(retriable(on('refused-stream'), none, { kind: 'refused-stream' }));
    assert.ok(!retriable(on('refused-stream'), none, { kind: 'reset' }));
  });
  test('retriable-4xx is 409; retriable-status-codes lists its codes', () => {
    assert.ok(retriable(on('retriable-4xx'), none, resp(409)));
    assert.ok(!retriable(on('retriable-4xx'), none, resp(429)));
    assert.ok(retriable(on('retriable-status-codes'), new Set([429]), resp(429)));
    assert.ok(!retriable(on('retriable-status-codes'), new Set([429]), resp(503)));
  });
  test('gRPC conditions read grpc-status (trailers-only replies)', () => {
    const g = on('cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable');
    assert.deepEqual([1, 4, 13, 8, 14, 2, 0].map((c) => retriable(g, none, resp(200, c))), [true, true, true, true, true, false, false]);
    assert.ok(!retriable(on('unavailable'), none, resp(200, 4)));
  });
});
