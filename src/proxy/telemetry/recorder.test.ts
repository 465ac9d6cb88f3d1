import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AccessLogEntry } from '../http/forward.js';
import { classify, serviceOfAuthority, serviceOfCluster } from './classify.js';
import { MAX_BUFFERED_EVENTS, MAX_KEYS, TelemetryRecorder } from './recorder.js';

const own = { name: 'web', namespace: 'default' };
function entry(over: Partial<AccessLogEntry> = {}): AccessLogEntry {
  return {
    startTime: 1, method: 'GET', authority: 'catalog.default', path: '/items', status: 200, flag: undefined, routeName: 'r0',
    cluster: 'outbound|80||catalog.default.svc.cluster.local', upstreamHost: '127.0.0.1:1', durationMs: 3, requestId: 'id', ...over,
  };
}

test('classify: direction, peers and success from the entry', () => {
  assert.deepEqual(serviceOfCluster('outbound|80||catalog.shop.svc.cluster.local'), { name: 'catalog', namespace: 'shop' });
  assert.equal(serviceOfCluster('inbound|8080||'), undefined);
  assert.deepEqual(serviceOfAuthority('catalog.shop:80'), { name: 'catalog', namespace: 'shop' });
  assert.equal(serviceOfAuthority('example.com.evil.org'), undefined);
  const o = classify(entry(), own);
  assert.equal(o.direction, 'outbound');
  assert.deepEqual(o.destination, { name: 'catalog', namespace: 'default' });
  assert.equal(o.success, true);
  const i = classify(entry({ cluster: 'inbound|8080||', status: 503 }), own);
  assert.equal(i.direction, 'inbound');
  assert.deepEqual(i.destination, own);
  assert.equal(i.success, false);
  assert.equal(classify(entry({ status: 0, flag: 'DC' }), own).success, false);
  const g = classify({ ...entry(), grpcStatus: 14 } as AccessLogEntry, own);
  assert.equal(g.success, false);
  const m = classify({ ...entry({ cluster: 'inbound|1||' }), inbound: true, sourcePrincipal: 'spiffe://cluster.local/ns/shop/sa/web' } as AccessLogEntry, own);
  assert.equal(m.mtls, true);
  assert.deepEqual(m.source, { name: 'unknown', namespace: 'shop' }); // a service account is not a Service
});

test('summaries count per key and reset', () => {
  let now = 1000;
  const r = new TelemetryRecorder(own, () => now);
  for (let k = 0; k < 10; k++) r.record(entry({ status: k < 8 ? 200 : 500 }));
  r.record(entry({ cluster: 'inbound|8080||' }));
  now = 6000;
  const s = r.takeSummary();
  assert.equal(s.start_ms, 1000);
  assert.equal(s.end_ms, 6000);
  const out = s.stats!.find((x) => x.direction === 'outbound')!;
  assert.equal(out.requests, 10);
  assert.equal(out.successes, 8);
  assert.equal(out.latency_counts!.reduce((a, b) => a + b, 0), 10);
  assert.equal(r.takeSummary().stats!.length, 0);
});

test('taps: filter, rate limit, bounded buffer, drops counted and reported after stop', () => {
  let now = 0;
  const r = new TelemetryRecorder(own, () => now);
  r.startTap({ id: 't1', pathPrefix: '/items', method: 'GET', authority: '', maxRate: 5, destination: '' });
  r.record(entry({ path: '/other' }));
  r.record(entry({ method: 'POST' }));
  for (let k = 0; k < 8; k++) r.record(entry());
  const a = r.takeTapEvents();
  assert.equal(a.events!.length, 5); // burst = rate
  assert.deepEqual(a.dropped, [{ tap_id: 't1', count: 3 }]);
  now = 1000; // a second later: 5 more tokens
  for (let k = 0; k < 5; k++) r.record(entry());
  assert.equal(r.takeTapEvents().events!.length, 5);
  r.startTap({ id: 't2', pathPrefix: '', method: '', authority: '', maxRate: 1000, destination: 'other.default' });
  r.record(entry());
  assert.equal(r.takeTapEvents().events!.filter((e) => e.tap_id === 't2').length, 0); // other destination
  r.stopTap('t1');
  r.stopTap('t2');
  assert.equal(r.activeTaps, 0);
  // A big burst beyond the buffer: counted, not kept.
  r.startTap({ id: 't3', pathPrefix: '', method: '', authority: '', maxRate: 1e9, destination: '' });
  for (let k = 0; k < MAX_BUFFERED_EVENTS + 10; k++) r.record(entry());
  r.stopTap('t3');
  const c = r.takeTapEvents();
  assert.equal(c.events!.length, MAX_BUFFERED_EVENTS);
  assert.deepEqual(c.dropped, [{ tap_id: 't3', count: 10 }]);
});

test('mergeWorker adds a worker\'s counters and keeps events of known taps only', () => {
  const w = new TelemetryRecorder(own);
  for (let k = 0; k < 4; k++) w.record(entry());
  w.startTap({ id: 't', pathPrefix: '', method: '', authority: '', maxRate: 10, destination: '' });
  w.record(entry());
  const p = new TelemetryRecorder(own);
  p.record(entry());
  p.startTap({ id: 't', pathPrefix: '', method: '', authority: '', maxRate: 10, destination: '' });
  p.mergeWorker(w.takeSummary(), w.takeTapEvents());
  const s = p.takeSummary();
  assert.equal(s.stats!.length, 1);
  assert.equal(s.stats![0]!.requests, 6);
  assert.equal(p.takeTapEvents().events!.length, 1);
});

test('keys are bounded: past MAX_KEYS new destinations count as unknown', () => {
  const r = new TelemetryRecorder(own);
  for (let k = 0; k < MAX_KEYS + 50; k++) r.record(entry({ cluster: undefined, authority: `host-${k}.example.com` }));
  const s = r.takeSummary();
  assert.equal(s.stats!.length, MAX_KEYS + 1);
  const overflow = s.stats!.find((x) => x.destination?.name === 'unknown')!;
  assert.equal(overflow.requests, 50);
});
