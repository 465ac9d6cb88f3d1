import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Histogram } from '../../telemetry/histogram.js';
import { computeStats, computeTimeseries, reportsStart, spanSeconds, type ProxyRing, type StoredStat, type StoredSummary } from './golden.js';
import { routeLabel } from './route-names.js';

const web = { name: 'web', namespace: 'default' };
const catalog = { name: 'catalog', namespace: 'default' };

function stat(direction: 'inbound' | 'outbound', requests: number, successes: number, latencyMs: number, extra: Partial<StoredStat> = {}): StoredStat {
  const h = new Histogram();
  for (let i = 0; i < requests; i++) h.record(latencyMs);
  const s = h.toSparse();
  return { direction, source: web, destination: catalog, route: 'r0', mtls: true, requests, successes, buckets: s.buckets, counts: s.counts, ...extra };
}

const sum = (startMs: number, endMs: number, stats: StoredStat[]): StoredSummary => ({ startMs, endMs, stats });

test('spans: from the window start (or the first report of any proxy) to each proxy\'s last summary end', () => {
  const ss = [sum(0, 5000, []), sum(5000, 10_000, []), sum(10_000, 15_000, [])];
  const ring = (summaries: StoredSummary[]): ProxyRing => ({ id: 'x', service: web, connected: true, summaries });
  assert.equal(reportsStart([ring(ss)], -60_000), 0); // the mesh reports since 0: not diluted over 60 s
  assert.equal(reportsStart([ring(ss)], 7000), 7000); // window starts inside a summary
  assert.equal(reportsStart([ring(ss.slice(1)), ring(ss)], -60_000), 0); // the earliest of all proxies
  assert.equal(spanSeconds(ss, -60_000, 0), 15);
  assert.equal(spanSeconds(ss.slice(2), -60_000, 0), 15); // a later proxy: the same start
  assert.equal(spanSeconds(ss, 7000, 7000), 8);
  assert.equal(spanSeconds(ss, 15_000, 15_000), 0); // nothing ended after the start
});

test('rates add over proxies; success rate and percentiles come from the merged counts', () => {
  const now = 60_000;
  const rings: ProxyRing[] = [
    // catalog's own proxy: 100 requests in 10 s, 80 ok, 10 ms each.
    { id: 'c1', service: catalog, connected: true, summaries: [sum(50_000, 55_000, [stat('inbound', 50, 40, 10)]), sum(55_000, 60_000, [stat('inbound', 50, 40, 10)])] },
    // a second catalog proxy, up 5 s later: 50 requests, all ok, 100 ms.
    { id: 'c2', service: catalog, connected: true, summaries: [sum(55_000, 60_000, [stat('inbound', 50, 50, 100)])] },
    // web calling catalog: outbound, gives the edge.
    { id: 'w1', service: web, connected: true, summaries: [sum(50_000, 60_000, [stat('outbound', 150, 130, 20, { mtls: false })])] },
  ];
  const r = computeStats(rings, { now, windowMs: 60_000, window: '60s' });
  const c = r.services.find((s) => s.name === 'catalog')!;
  // 100/10 + 50/10: every proxy's rate runs from the same start (the mesh's first
  // report in the window); with one of its own, c2 gave 50/5 and catalog 20 rps
  // while the edge carrying the same 150 requests said 15.
  assert.equal(c.rps, 15);
  assert.equal(c.successRate, 0.8667); // 130/150, 4 digits
  assert.equal(c.proxies, 2);
  assert.ok(c.p50Ms! > 8 && c.p50Ms! <= 11, String(c.p50Ms));
  assert.ok(c.p99Ms! > 80 && c.p99Ms! <= 103, String(c.p99Ms));
  assert.deepEqual(c.routes.map((x) => x.name), ['r0']);
  const w = r.services.find((s) => s.name === 'web')!;
  assert.equal(w.rps, 0);
  assert.equal(w.proxies, 1);
  assert.equal(r.edges.length, 1);
  assert.deepEqual(r.edges[0]!.source, web);
  assert.equal(r.edges[0]!.rps, 15);
  assert.equal(r.edges[0]!.errorRate, 0.1333);
  assert.equal(r.edges[0]!.mtls, false);
});

test('a Service without sidecars is measured from its callers; namespace filters', () => {
  const ring: ProxyRing = { id: 'w1', service: web, connected: true, summaries: [sum(0, 10_000, [stat('outbound', 100, 100, 5, { destination: { name: 'db', namespace: 'data' } })])] };
  const all = computeStats([ring], { now: 10_000, windowMs: 60_000, window: '60s' });
  assert.equal(all.services.find((s) => s.name === 'db')!.rps, 10);
  const only = computeStats([ring], { now: 10_000, windowMs: 60_000, window: '60s', namespace: 'default' });
  assert.deepEqual(only.services.map((s) => s.name), ['web']);
  assert.equal(only.edges.length, 1); // the edge leaves the namespace
  const none = computeStats([ring], { now: 100_000, windowMs: 30_000, window: '30s' });
  assert.equal(none.services.find((s) => s.name === 'db'), undefined); // out of the window
});

test('timeseries: one point per 5 s step, rps = requests / step', () => {
  const ring: ProxyRing = { id: 'c1', service: catalog, connected: true, summaries: [sum(0, 5000, [stat('inbound', 50, 25, 10)]), sum(5000, 10_000, [stat('inbound', 10, 10, 10)])] };
  const ts = computeTimeseries([ring], { now: 12_000, minutes: 1, stepS: 5, service: catalog });
  assert.equal(ts.step, 5);
  assert.equal(ts.points.length, 12);
  const nonEmpty = ts.points.filter((p) => p.rps > 0);
  assert.deepEqual(nonEmpty.map((p) => [p.rps, p.successRate]), [[10, 0.5], [2, 1]]);
  assert.ok(ts.points.every((p, i) => i === 0 || p.t - ts.points[i - 1]!.t === 5000));
});

// Regression: the dashboard's frontend → backend edge showed about twice the backend's
// rps when the callee's inbound view of a caller it could name was added to the
// caller's outbound view. One view per edge; the Service's numbers match the edge.
test('an edge counts each request once: the caller\'s outbound view when the caller has a sidecar', () => {
  const now = 10_000;
  const rings: ProxyRing[] = [
    { id: 'w1', service: web, connected: true, summaries: [sum(0, 10_000, [stat('outbound', 100, 100, 5)])] },
    // The callee names the caller (as a future principal → Service mapping would) and an unmeshed one.
    { id: 'c1', service: catalog, connected: true, summaries: [sum(0, 10_000, [stat('inbound', 100, 100, 5), stat('inbound', 30, 30, 5, { source: { name: 'batch', namespace: 'default' } }), stat('inbound', 20, 20, 5, { source: { name: 'unknown', namespace: 'default' } })])] },
  ];
  const r = computeStats(rings, { now, windowMs: 60_000, window: '60s' });
  const byPair = Object.fromEntries(r.edges.map((e) => [`${e.source.name}>${e.destination.name}`, e.requests]));
  assert.deepEqual(byPair, { 'web>catalog': 100, 'batch>catalog': 30 }); // no sidecar for batch: the inbound view; unknown: no edge
  const c = r.services.find((s) => s.name === 'catalog')!;
  assert.equal(c.requests, 150); // all it served
  assert.equal(c.rps, 15);
  assert.equal(r.edges.find((e) => e.source.name === 'web')!.rps, 10);
});

test('per-route stats come from the callers\' outbound routes, named by rule', () => {
  const now = 10_000;
  const entry = (rule: number, match: number): string => `HTTPRoute/default/catalog/rule${rule}/match${match}`;
  const rings: ProxyRing[] = [
    { id: 'w1', service: web, connected: true, summaries: [sum(0, 10_000, [stat('outbound', 60, 60, 5, { route: entry(0, 0) }), stat('outbound', 20, 20, 5, { route: entry(0, 1) }), stat('outbound', 20, 20, 5, { route: entry(1, 0) })])] },
    { id: 'c1', service: catalog, connected: true, summaries: [sum(0, 10_000, [stat('inbound', 100, 100, 5, { route: 'default' })])] },
  ];
  const names = new Map([['HTTPRoute/default/catalog', ['items', undefined]]]);
  const r = computeStats(rings, {
    now, windowMs: 60_000, window: '60s',
    routeLabel: (route, dest) => routeLabel(route, dest, (k, ns, n) => names.get(`${k}/${ns}/${n}`)),
  });
  const c = r.services.find((s) => s.name === 'catalog')!;
  assert.deepEqual(c.routes.map((x) => [x.name, x.requests]), [['HTTPRoute/catalog/items', 80], ['HTTPRoute/catalog/rule1', 20]]);
  // Without callers' reports (no sidecar calls it), the inbound routes.
  const alone = computeStats([rings[1]!], { now, windowMs: 60_000, window: '60s' });
  assert.deepEqual(alone.services.find((s) => s.name === 'catalog')!.routes.map((x) => x.name), ['default']);
});

test('routeLabel: rule name or index, namespace only when not the destination\'s, other names as they are', () => {
  const rules = (): readonly (string | undefined)[] => ['canary'];
  assert.equal(routeLabel('HTTPRoute/default/catalog/rule0/match2.1', catalog, rules), 'HTTPRoute/catalog/canary');
  assert.equal(routeLabel('GRPCRoute/shop/inv/rule3/match0', catalog), 'GRPCRoute/shop/inv/rule3');
  assert.equal(routeLabel('default', catalog), 'default');
  assert.equal(routeLabel('HTTPRoute/x', catalog), 'HTTPRoute/x');
});

// Regression: in the dashboard e2e the frontend's sidecar connected after the backend's;
// with a start of its own per proxy the frontend → backend edge showed about twice the
// backend's rps for the same requests.
test('a caller that connected after its callee: the edge and the callee show the same rate', () => {
  const rings: ProxyRing[] = [
    { id: 'c1', service: catalog, connected: true, summaries: [sum(0, 5000, []), sum(5000, 10_000, [stat('inbound', 100, 100, 5, { source: { name: 'unknown', namespace: 'default' } })])] },
    { id: 'w1', service: web, connected: true, summaries: [sum(5500, 10_000, [stat('outbound', 100, 100, 5)])] },
  ];
  const r = computeStats(rings, { now: 10_000, windowMs: 60_000, window: '60s' });
  assert.equal(r.services.find((s) => s.name === 'catalog')!.rps, 10);
  assert.equal(r.edges[0]!.rps, 10);
});
