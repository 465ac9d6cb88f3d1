import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Histogram } from '../../telemetry/histogram.js';
import { computeStats, computeTimeseries, coveredSeconds, type ProxyRing, type StoredStat, type StoredSummary } from './golden.js';

const web = { name: 'web', namespace: 'default' };
const catalog = { name: 'catalog', namespace: 'default' };

function stat(direction: 'inbound' | 'outbound', requests: number, successes: number, latencyMs: number, extra: Partial<StoredStat> = {}): StoredStat {
  const h = new Histogram();
  for (let i = 0; i < requests; i++) h.record(latencyMs);
  const s = h.toSparse();
  return { direction, source: web, destination: catalog, route: 'r0', mtls: true, requests, successes, buckets: s.buckets, counts: s.counts, ...extra };
}

const sum = (startMs: number, endMs: number, stats: StoredStat[]): StoredSummary => ({ startMs, endMs, stats });

test('coveredSeconds: from the window start (or the first summary) to the last summary end', () => {
  const ss = [sum(0, 5000, []), sum(5000, 10_000, []), sum(10_000, 15_000, [])];
  assert.equal(coveredSeconds(ss, -60_000), 15); // connected 15 s ago: not diluted over 60 s
  assert.equal(coveredSeconds(ss, 7000), 8); // window starts inside a summary
  assert.equal(coveredSeconds(ss, 15_000), 0); // nothing ended after the start
});

test('rates add over proxies; success rate and percentiles come from the merged counts', () => {
  const now = 60_000;
  const rings: ProxyRing[] = [
    // catalog's own proxy: 100 requests in 10 s, 80 ok, 10 ms each.
    { id: 'c1', service: catalog, connected: true, summaries: [sum(50_000, 55_000, [stat('inbound', 50, 40, 10)]), sum(55_000, 60_000, [stat('inbound', 50, 40, 10)])] },
    // a second catalog proxy: 50 requests in 5 s, all ok, 100 ms.
    { id: 'c2', service: catalog, connected: true, summaries: [sum(55_000, 60_000, [stat('inbound', 50, 50, 100)])] },
    // web calling catalog: outbound, gives the edge.
    { id: 'w1', service: web, connected: true, summaries: [sum(50_000, 60_000, [stat('outbound', 150, 130, 20, { mtls: false })])] },
  ];
  const r = computeStats(rings, { now, windowMs: 60_000, window: '60s' });
  const c = r.services.find((s) => s.name === 'catalog')!;
  assert.equal(c.rps, 20); // 100/10 + 50/5
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
