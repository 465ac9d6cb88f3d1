import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statTable, routesTable, type ServiceStats } from './stat.js';
import { tapLine, tapTarget, type TapEvent } from './tap.js';
import { topView } from './top.js';

const svc: ServiceStats = { name: 'backend', namespace: 'default', rps: 12.345, successRate: 0.8, p50Ms: 3.21, p95Ms: 40.4, p99Ms: null, proxies: 2, routes: [{ name: 'r0', rps: 1, successRate: 1, p50Ms: 1, p95Ms: 2, p99Ms: 3 }] };

test('stat tables: linkerd-like columns, "-" for no data', () => {
  assert.equal(statTable([svc], false), 'NAME      PROXIES   SUCCESS   RPS       LATENCY_P50   LATENCY_P95   LATENCY_P99\nbackend   2         80.00%    12.3rps   3.2ms         40ms          -\n');
  assert.match(statTable([svc], true), /^NAMESPACE\s+NAME/);
  assert.match(routesTable([svc], false), /^backend\s+r0\s+100\.00%\s+1\.00rps\s+1\.0ms\s+2\.0ms\s+3\.0ms$/m);
});

test('top view: services by rps, then edges', () => {
  const v = topView({ window: '60s', generatedAt: 'T', services: [svc, { ...svc, name: 'web', rps: 50 }], edges: [{ source: { name: 'web', namespace: 'default' }, destination: { name: 'backend', namespace: 'default' }, rps: 5, errorRate: 0.2, p99Ms: 9, mtls: true }] }, false);
  assert.ok(v.indexOf('\nweb ') < v.indexOf('\nbackend '));
  assert.match(v, /^web\.default\s+backend\.default\s+5\.00rps\s+80\.00%\s+9\.0ms\s+yes$/m);
});

test('tap target and line formats', () => {
  assert.deepEqual(tapTarget('backend'), { service: 'backend' });
  assert.deepEqual(tapTarget('svc/backend'), { service: 'backend' });
  assert.deepEqual(tapTarget('sidecar~1.2.3.4~web.default'), { proxy: 'sidecar~1.2.3.4~web.default' });
  assert.deepEqual(tapTarget('proxy/p1'), { proxy: 'p1' });
  const e: TapEvent = { time: 'T', proxy: 'p', direction: 'outbound', method: 'GET', authority: 'backend.default', path: '/x', status: 503, flags: 'UH', durationMs: 1.25, source: { name: 'web', namespace: 'default' }, destination: { name: 'backend', namespace: 'default' }, requestId: 'r', route: 'r0' };
  assert.equal(tapLine(e, 'default'), 'T out web.default -> backend.default GET backend.default/x 503 UH 1.3ms');
  assert.equal(tapLine(e, 'wide'), 'T out web.default -> backend.default GET backend.default/x 503 UH 1.3ms proxy=p route=r0 id=r');
  assert.deepEqual(JSON.parse(tapLine(e, 'json')), e);
});
