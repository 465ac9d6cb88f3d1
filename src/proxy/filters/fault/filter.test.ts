// The fault filter from its typed config: percentages, header match, per-route override, gRPC aborts.
import { fixtureRequest } from '../request-fixture.js';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../config/proto-values.js';
import type { FilterRequest } from '../types.js';
import { compileFault } from './config.js';
import { createFaultFilter, faultFactory } from './filter.js';

const req = (headers: Record<string, string> = {}, grpc = false): FilterRequest => fixtureRequest({ headers, grpc });
const seq = (...xs: number[]) => { let i = 0; return () => xs[i++ % xs.length]!; };
const T = '@type';

describe('fault filter', () => {
  test('abort by percentage (FractionalPercent) with an HTTP status and flag FI', () => {
    const cfg = compileFault({ abort: { http_status: 418, percentage: { numerator: 25, denominator: 'HUNDRED' } } }, 'f');
    const f = createFaultFilter(cfg, { now: () => 0, random: seq(0.1, 0.3, 0.24, 0.9) });
    const out = [0, 1, 2, 3].map(() => f.decodeHeaders(req(), undefined));
    assert.deepEqual(out, [{ flag: 'FI', status: 418 }, undefined, { flag: 'FI', status: 418 }, undefined]);
  });

  test('MILLION denominators and gRPC status aborts (trailers-only for gRPC requests)', () => {
    const cfg = compileFault({ abort: { grpc_status: 14, percentage: { numerator: 1000, denominator: 'MILLION' } } }, 'f');
    const f = createFaultFilter(cfg, { now: () => 0, random: seq(0.0009) });
    assert.deepEqual(f.decodeHeaders(req({}, true), undefined), { flag: 'FI', status: 200, grpcStatus: 14 });
    const g = createFaultFilter(cfg, { now: () => 0, random: seq(0.001) });
    assert.equal(g.decodeHeaders(req({}, true), undefined), undefined);
  });

  test('header match gates the fault; the route config replaces the listener one', () => {
    const base = compileFault({}, 'f');
    const perRoute = compileFault({ abort: { http_status: 503, percentage: { numerator: 100 } }, headers: [{ name: 'x-chaos', string_match: { exact: 'on' } }] }, 'r');
    const f = createFaultFilter(base, { now: () => 0, random: Math.random });
    assert.equal(f.decodeHeaders(req(), undefined), undefined);
    assert.equal(f.decodeHeaders(req(), perRoute), undefined);
    assert.deepEqual(f.decodeHeaders(req({ 'x-chaos': 'on' }), perRoute), { flag: 'FI', status: 503 });
  });

  test('delay then continue (a promise the chain waits for)', async () => {
    const cfg = compileFault({ delay: { fixed_delay: '0.02s', percentage: { numerator: 100 } } }, 'f');
    const f = createFaultFilter(cfg, { now: () => 0, random: Math.random });
    const t0 = performance.now();
    const v = f.decodeHeaders(req(), undefined);
    assert.ok(v instanceof Promise);
    assert.equal(await v, undefined);
    assert.ok(performance.now() - t0 >= 15);
  });

  test('what it cannot honour is refused', () => {
    assert.throws(() => faultFactory.create({ [T]: 'x', abort: { header_abort: {} } }, 'f', { now: () => 0, random: Math.random }), ConfigError);
    assert.throws(() => compileFault({ abort: { percentage: { numerator: 1 } } }, 'f'), /needs http_status or grpc_status/);
    assert.throws(() => compileFault({ downstream_nodes: ['a'] }, 'f'), /not supported/);
  });
});
