import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { ObjectCache, parseServiceStats, serviceOfNode, serviceViews, syncState, type Obj } from './model.js';
import { toYaml } from './yaml.js';
import { countdown, expiryTone, fmtMs, fmtPercent, fmtRps, parseStats, parseTapEvent, parseTimeSeries, serviceGraph, successTone } from './telemetry-model.js';

const svc = (name: string, selector: Record<string, string>): Obj => ({ apiVersion: 'weft.dev/v1alpha1', kind: 'Service', metadata: { name, namespace: 'default', resourceVersion: '1' }, spec: { selector, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'http' }] } });

test('the cache: a resync replaces everything at its BOOKMARK; deletes and resume points', () => {
  const c = new ObjectCache();
  c.beginResync();
  assert.equal(c.apply({ type: 'ADDED', object: svc('a', {}) }), false);
  assert.equal(c.objects.size, 0);
  assert.equal(c.apply({ type: 'BOOKMARK', object: { apiVersion: '', kind: '', metadata: { name: '', resourceVersion: '5' } } }), true);
  assert.deepEqual([...c.objects.keys()], ['Service/default/a']);
  assert.equal(c.resourceVersion, '5');
  c.apply({ type: 'DELETED', object: { ...svc('a', {}), metadata: { name: 'a', namespace: 'default', resourceVersion: '6' } } });
  assert.equal(c.objects.size, 0);
  assert.equal(c.resourceVersion, '6');
  // A second resync drops objects the new list no longer has.
  c.apply({ type: 'ADDED', object: svc('b', {}) });
  c.beginResync();
  assert.equal(c.resyncing, true);
  c.apply({ type: 'ADDED', object: svc('c', {}) });
  c.apply({ type: 'BOOKMARK', object: { apiVersion: '', kind: '', metadata: { name: '', resourceVersion: '9' } } });
  assert.deepEqual([...c.objects.keys()], ['Service/default/c']);
});

test('service views: endpoints by selector and sidecar, routes with weights, policies by target', () => {
  const c = new ObjectCache();
  const objs: Obj[] = [
    svc('catalog', { app: 'catalog' }),
    svc('web', { app: 'web' }),
    { apiVersion: 'weft.dev/v1alpha1', kind: 'Workload', metadata: { name: 'c-0', namespace: 'default' }, spec: { address: '10.0.0.1', labels: { app: 'catalog' }, health: 'UNHEALTHY' } },
    { apiVersion: 'weft.dev/v1alpha1', kind: 'Workload', metadata: { name: 'other-ns', namespace: 'shop' }, spec: { address: '10.0.0.2', labels: { app: 'catalog' } } },
    { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: 'r', namespace: 'default' }, spec: { parentRefs: [{ group: '', kind: 'Service', name: 'catalog', port: 80 }], rules: [{ name: 'split', matches: [{ path: { type: 'PathPrefix', value: '/api' }, headers: [{ name: 'x-v', value: '2' }] }], backendRefs: [{ name: 'v1', weight: 3 }, { name: 'v2', weight: 1 }, { name: 'off', weight: 0 }] }] } },
    { apiVersion: 'weft.dev/v1alpha1', kind: 'BackendPolicy', metadata: { name: 'via-route', namespace: 'default' }, spec: { targetRefs: [{ kind: 'HTTPRoute', name: 'r', sectionName: 'split' }] } },
    { apiVersion: 'weft.dev/v1alpha1', kind: 'SecurityPolicy', metadata: { name: 'ns-wide', namespace: 'default' }, spec: {} },
    { apiVersion: 'weft.dev/v1alpha1', kind: 'SecurityPolicy', metadata: { name: 'web-only', namespace: 'default' }, spec: { targetRefs: [{ kind: 'Service', name: 'web' }] } },
  ];
  for (const o of objs) c.apply({ type: 'ADDED', object: o });
  const proxies = [{ id: '1', nodeId: 'sidecar~127.0.0.9~web.default', workload: 'default/web-abc', namespace: 'default', connectedAt: '', types: {} }];
  const [catalog, web] = serviceViews(c, proxies);
  assert.equal(catalog?.name, 'catalog');
  assert.deepEqual(catalog?.ports, ['http 80→8080/http']);
  assert.deepEqual(catalog?.endpoints, [{ name: 'c-0', address: '10.0.0.1', health: 'UNHEALTHY', source: 'store' }]);
  assert.deepEqual(catalog?.routes[0]?.ports, [80]);
  assert.equal(catalog?.routes[0]?.rules[0]?.matches, '/api* x-v: 2');
  assert.deepEqual(catalog?.routes[0]?.rules[0]?.backends.map((b) => [b.name, b.weight, b.percent]), [['v1', 3, 75], ['v2', 1, 25], ['off', 0, 0]]);
  assert.deepEqual(catalog?.policies.map((p) => `${p.name} ${p.via}`), ['via-route HTTPRoute/r#split', 'ns-wide namespace default']);
  assert.deepEqual(web?.endpoints, [{ name: 'web-abc', address: '127.0.0.9', health: 'HEALTHY', source: 'proxy' }]);
  assert.deepEqual(web?.policies.map((p) => p.name), ['ns-wide', 'web-only']);
});

test('sync states as proxy-status defines them', () => {
  assert.equal(syncState(undefined), '—');
  assert.equal(syncState({ subscribed: ['*'] }), 'NOT SENT');
  assert.equal(syncState({ sentVersion: 'a', ackedVersion: 'a' }), 'SYNCED');
  assert.equal(syncState({ sentVersion: 'b', ackedVersion: 'a', lastNack: { message: 'x', at: '', version: 'b' } }), 'NACKED');
  assert.equal(syncState({ sentVersion: 'b', ackedVersion: 'a' }), 'STALE');
  assert.equal(serviceOfNode('sidecar~10.0.0.1~catalog-v1.shop~8080'), 'shop/catalog-v1');
  assert.equal(serviceOfNode('grpc~x'), undefined);
});

test('golden metrics are read only from what the endpoint says', () => {
  assert.deepEqual(parseServiceStats({ items: [{ service: 'a', namespace: 'default', requestsPerSecond: 2, successRate: 0.99, latencyMs: { p50: 1, p95: 2, p99: 3 } }, { nope: 1 }] }), [
    { service: 'a', namespace: 'default', requestsPerSecond: 2, successRate: 0.99, p50Ms: 1, p95Ms: 2, p99Ms: 3 },
  ]);
  assert.deepEqual(parseServiceStats('garbage'), []);
});

test('the YAML view reads back as the same object', () => {
  const o = {
    apiVersion: 'v1', kind: 'X', metadata: { name: 'a', labels: { 'app.kubernetes.io/name': 'y', on: 'true' } },
    spec: { s: ['yes', '1.5', '', 'a: b', '#c', '-x', 'x #y', ' lead', 'multi\nline', '*', '@a'], n: 1, b: false, z: null, e: [], eo: {}, nested: [[1, 2], { a: [{ b: 1 }] }], path: '/api/*' },
  };
  assert.deepEqual(parse(toYaml(o)), o);
});

test('telemetry: stats parse defensively; the graph has declared and observed services, edges with traffic only', () => {
  const stats = parseStats({
    window: '60s', generatedAt: '2026-01-01T00:00:00Z',
    services: [
      { name: 'catalog', namespace: 'default', rps: 10, successRate: 0.8, p50Ms: 2, p95Ms: 5, p99Ms: 9, proxies: 2, routes: [{ name: 'catalog', rps: 10, successRate: 0.8, p50Ms: 2, p95Ms: 5, p99Ms: 9 }] },
      { name: 'web', rps: 0 },
      { namespace: 'x' },
    ],
    edges: [
      { source: { name: 'web', namespace: 'default' }, destination: { name: 'catalog', namespace: 'default' }, rps: 10, errorRate: 0.2, p99Ms: 9, mtls: true },
      { source: { name: 'outside', namespace: 'other' }, destination: { name: 'web', namespace: 'default' }, rps: 1.5, errorRate: 0, p99Ms: 1, mtls: false },
      { source: { name: 'web', namespace: 'default' }, destination: { name: 'ledger', namespace: 'default' }, rps: 0, errorRate: 0, p99Ms: 0, mtls: true },
    ],
  });
  assert.equal(stats.services.length, 2);
  assert.equal(stats.services[1]!.namespace, 'default');
  assert.equal(stats.services[1]!.p99Ms, 0);
  const g = serviceGraph([{ name: 'catalog', namespace: 'default' }, { name: 'web', namespace: 'default' }, { name: 'ledger', namespace: 'default' }], stats);
  assert.deepEqual(g.nodes.map((n) => `${n.id}:${n.tone}${n.unknown ? ':unknown' : ''}`), ['default/catalog:bad', 'default/ledger:idle', 'default/web:idle', 'other/outside:idle:unknown']);
  assert.deepEqual(g.edges.map((e) => e.id), ['default/web->default/catalog', 'other/outside->default/web']);
  assert.equal(g.edges[0]!.label, 'mTLS · 10.0 rps · 20.0% err · p99 9.0 ms');
  assert.equal(g.edges[0]!.tone, 'bad');
  assert.equal(g.edges[1]!.mtls, false);
  assert.deepEqual(serviceGraph([], undefined), { nodes: [], edges: [] });
});

test('telemetry: success tones, number formats, time series order, tap events', () => {
  assert.equal(successTone(0.999, 1), 'ok');
  assert.equal(successTone(0.97, 1), 'warn');
  assert.equal(successTone(0.5, 1), 'bad');
  assert.equal(successTone(0.5, 0), 'idle');
  assert.equal(fmtPercent(1), '100%');
  assert.equal(fmtPercent(0.9995), '99.95%');
  assert.equal(fmtMs(1234), '1.23 s');
  assert.equal(fmtRps(0.5), '0.50 rps');
  assert.deepEqual(parseTimeSeries({ step: 5, points: [{ t: 2000, rps: 1 }, { t: 1000, rps: 2 }, { rps: 3 }] }).points.map((p) => p.t), [1000, 2000]);
  const e = parseTapEvent({ time: 't', proxy: 'p', direction: 'inbound', method: 'GET', authority: 'a', path: '/x', status: 200, flags: '-', durationMs: 1, source: { name: 'web', namespace: 'default' }, destination: 'default/catalog', requestId: 'r', traceId: 'abc' });
  assert.equal(e?.source, 'default/web');
  assert.equal(e?.destination, 'default/catalog');
  assert.equal(e?.traceId, 'abc');
  assert.equal(parseTapEvent({}), undefined);
});

test('certificates: expiring soon is a fifth of the lifetime or an hour; countdowns', () => {
  const now = Date.parse('2026-01-10T00:00:00Z');
  assert.equal(expiryTone('2026-01-01T00:00:00Z', '2026-02-01T00:00:00Z', now), 'ok');
  assert.equal(expiryTone('2025-01-01T00:00:00Z', '2026-02-01T00:00:00Z', now), 'soon');
  assert.equal(expiryTone('2026-01-09T00:00:00Z', '2026-01-10T00:30:00Z', now), 'soon');
  assert.equal(expiryTone('2026-01-01T00:00:00Z', '2026-01-09T00:00:00Z', now), 'expired');
  assert.equal(countdown('2026-01-13T05:00:00Z', now), '3d 5h');
  assert.equal(countdown('2026-01-10T02:30:00Z', now), '2h 30m');
  assert.equal(countdown('2026-01-10T00:01:05Z', now), '1m 5s');
  assert.equal(countdown('2026-01-09T22:00:00Z', now), 'expired 2h 0m ago');
});
