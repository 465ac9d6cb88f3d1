// The telemetry channel end to end in one process: a real control plane (gRPC
// Telemetry service on its xDS port, HTTP API), two real proxies (startProxy, ADS +
// telemetry stream): web's sidecar (outbound, routed by an HTTPRoute with a named rule)
// and backend's sidecar (an inbound listener in front of the app), and a real backend
// app that fails every 5th request. Each request is seen by both proxies. Checks the
// golden metrics (each request counted once per edge, per-route stats by rule name),
// the time series, the SSE stream, taps (filter, events, rate limit drops) and that a
// closed tap connection stops the tap on the proxy.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane, type ControlPlane } from '../../src/control/control-plane.js';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { createBackoff } from '../../src/proxy/xds-client/backoff.js';
import { call, listener, routeConfig, startUpstream, staticCluster, waitFor, type Upstream } from '../fixtures/proxy/helpers.js';

let dir: string;
let cp: ControlPlane;
let backend: Upstream;
let web: Proxy;
let backendSidecar: Proxy;
let outPort: number;
let served = 0;
/** Requests sent through web's outbound listener to backend. */
let sent = 0;

const api = async <T>(path: string): Promise<T> => {
  const r = await fetch(`${cp.apiUrl}${path}`);
  assert.equal(r.status, 200, `${path}: ${await r.clone().text()}`);
  return (await r.json()) as T;
};
const get = (path: string, method = 'GET'): ReturnType<typeof call> => {
  sent++;
  return call(outPort, path, { method, headers: { host: 'backend.default' } });
};

interface ServiceRow { name: string; namespace: string; rps: number; requests: number; successRate: number | null; p50Ms: number | null; p99Ms: number | null; proxies: number; routes: { name: string; requests: number }[] }
interface Stats { window: string; services: ServiceRow[]; edges: { source: { name: string }; destination: { name: string }; rps: number; requests: number; errorRate: number | null; mtls: boolean }[] }
interface ProxyRow { id: string; activeTaps: number; service: { name: string } }

const proxies = async (): Promise<ProxyRow[]> => (await api<{ items: ProxyRow[] }>('/apis/telemetry/v1/proxies')).items;
const webTaps = async (): Promise<number | undefined> => (await proxies()).find((p) => p.service.name === 'web')?.activeTaps;

/** An open tap: lines as they come, and a way to hang up. */
function openTap(query: string): Promise<{ res: IncomingMessage; lines: string[]; next(): Promise<string>; close(): void }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${cp.apiUrl}/apis/telemetry/v1/tap?${query}`, (res) => {
      const lines: string[] = [];
      let buf = '';
      let wake: (() => void) | undefined;
      res.setEncoding('utf8').on('data', (c: string) => {
        buf += c;
        let nl: number;
        while ((nl = buf.indexOf('\n')) !== -1) { lines.push(buf.slice(0, nl)); buf = buf.slice(nl + 1); }
        wake?.();
      });
      res.on('error', () => {});
      let read = 0;
      resolve({
        res, lines,
        next: () => new Promise<string>((ok, fail) => {
          const t = setTimeout(() => fail(new Error('no tap line within 10 s')), 10_000);
          const check = (): void => {
            wake = undefined;
            if (read < lines.length) { clearTimeout(t); ok(lines[read++]!); } else wake = check;
          };
          check();
        }),
        close: () => req.destroy(),
      });
    });
    req.on('error', (e) => { if (!('code' in e && e.code === 'ECONNRESET')) reject(e); });
    req.end();
  });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-telemetry-'));
  backend = await startUpstream('backend', (_req, res) => {
    served++;
    const fail = served % 5 === 0; // 20% errors
    res.writeHead(fail ? 500 : 200, { 'content-type': 'text/plain' });
    res.end(fail ? 'boom' : 'ok');
  });
  cp = await startControlPlane({ dataDir: join(dir, 'data'), apiAddr: '127.0.0.1:0', logLevel: 'silent', xdsDebounceMs: 20 });
  // backend's sidecar: a plaintext inbound listener (one catch-all route named "default",
  // as the control plane's inbound listener has) in front of the app; it reports to the
  // control plane but registers no workload, so the Workload below points peers at it.
  backendSidecar = await startProxy({
    adminAddr: '127.0.0.1:0', logLevel: 'silent', xdsAddresses: [cp.xdsAddress], xdsBackoff: createBackoff(20, 200),
    node: { id: 'backend-sidecar', metadata: { WEFT_SERVICE: 'backend', WEFT_NAMESPACE: 'default' } },
    listenerAddresses: { outbound: '127.0.0.1:0' },
    bootstrap: {
      static_resources: {
        listeners: [{
          ...listener('backend-inbound', { route_config: routeConfig('inbound', [{ name: 'in', domains: ['*'], routes: [{ name: 'default', match: { prefix: '/' }, route: { cluster: 'inbound|80||' } }] }]) }),
          traffic_direction: 'INBOUND',
        }],
        clusters: [staticCluster('inbound|80||', [backend.port])],
      },
    },
    telemetry: { intervalMs: 200, backoff: createBackoff(20, 200) },
  });
  const inboundPort = await waitFor('backend sidecar inbound listener', () => backendSidecar.listenerPort('backend-inbound'));
  const yaml = `apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: backend, namespace: default}
spec:
  selector: {app: backend}
  ports: [{name: http, port: 80, targetPort: ${inboundPort}, protocol: http}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: backend-0, namespace: default, labels: {app: backend}}
spec:
  address: 127.0.0.1
  ports: [{port: ${inboundPort}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: backend, namespace: default}
spec:
  parentRefs: [{group: '', kind: Service, name: backend, port: 80}]
  rules:
  - name: items
    matches: [{path: {type: PathPrefix, value: /items}}]
    backendRefs: [{name: backend, port: 80}]
  - backendRefs: [{name: backend, port: 80}]
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 1, protocol: http}]
`;
  const r = await fetch(`${cp.apiUrl}/apply`, { method: 'POST', headers: { authorization: `Bearer ${cp.adminToken}`, 'content-type': 'application/yaml' }, body: yaml });
  assert.equal(r.status, 200, await r.text());
  web = await startProxy({
    adminAddr: '127.0.0.1:0', logLevel: 'silent', xdsAddresses: [cp.xdsAddress], xdsBackoff: createBackoff(20, 200),
    workload: { service: 'web', namespace: 'default', address: '127.0.0.1' },
    listenerAddresses: { outbound: '127.0.0.1:0' },
    telemetry: { intervalMs: 200, backoff: createBackoff(20, 200) },
  });
  outPort = await waitFor('outbound listener', () => web.listenerPort('outbound'));
  await waitFor('backend reachable', async () => (await get('/warm')).status === 200 || undefined);
});

after(async () => {
  await web?.close();
  await backendSidecar?.close();
  await cp?.close();
  await backend?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('telemetry: proxy → control plane', { concurrency: false }, () => {
  test('golden metrics: request count, success rate, latency, edge, routes by rule name', async () => {
    const before = served;
    const n = 200;
    for (let i = 0; i < n; i += 10) await Promise.all(Array.from({ length: 10 }, () => get('/items')));
    const total = served; // every request reached the backend
    assert.equal(total - before, n);
    // Both sidecars saw every request: backend's numbers are what it served (inbound),
    // the web → backend edge what web sent (outbound); neither is counted twice.
    const row = await waitFor('backend stats and the edge with every request', async () => {
      const s = await api<Stats>('/apis/telemetry/v1/stats?namespace=default&window=60s');
      const b = s.services.find((x) => x.name === 'backend');
      const edge = s.edges.find((e) => e.source.name === 'web' && e.destination.name === 'backend');
      return b !== undefined && b.requests === total && edge?.requests === sent ? { s, b, edge } : undefined;
    });
    const { s, b, edge } = row;
    assert.equal(s.window, '60s');
    assert.ok(sent - total <= 5, `web sent ${sent}, backend served ${total}`); // only warm-up replies before the config
    assert.ok(Math.abs(b.successRate! - 0.8) <= 0.05, `success rate ${b.successRate}`);
    assert.ok(b.rps > 0);
    // The same requests at the same rate: the proxies' spans share their start (web's
    // sidecar connected after backend's; with spans of their own the edge showed ~1.6×).
    assert.ok(edge.rps < b.rps * 1.25 && edge.rps > b.rps / 1.25, `edge ${edge.rps} rps, backend ${b.rps} rps`);
    assert.ok(b.p50Ms !== null && b.p99Ms !== null && b.p50Ms <= b.p99Ms);
    assert.equal(b.proxies, 1);
    // The caller's routes, by HTTPRoute rule: `items` has the n requests, the unnamed rule the warm-up.
    assert.deepEqual(b.routes.map((r) => r.name), ['HTTPRoute/backend/items', 'HTTPRoute/backend/rule1']);
    assert.equal(b.routes[0]!.requests, n);
    const w = s.services.find((x) => x.name === 'web');
    assert.equal(w?.proxies, 1);
    assert.deepEqual(s.edges.map((e) => `${e.source.name}>${e.destination.name}`), ['web>backend']); // the inbound view adds no edge
    assert.ok(Math.abs(edge.errorRate! - 0.2) <= 0.05);
    assert.equal(edge.mtls, false); // plaintext in this test
  });

  test('timeseries and the SSE stats stream', async () => {
    const ts = await api<{ step: number; points: { t: number; rps: number }[] }>('/apis/telemetry/v1/timeseries?service=backend&namespace=default&minutes=1');
    assert.equal(ts.step, 5);
    assert.equal(ts.points.length, 12);
    assert.ok(ts.points.some((p) => p.rps > 0));
    const ctl = new AbortController();
    const r = await fetch(`${cp.apiUrl}/apis/telemetry/v1/stats/stream?namespace=default`, { signal: ctl.signal });
    assert.match(r.headers.get('content-type') ?? '', /^text\/event-stream/);
    const reader = r.body!.getReader();
    let text = '';
    while (!text.includes('\n\n')) text += new TextDecoder().decode((await reader.read()).value);
    ctl.abort();
    assert.match(text, /^event: stats\ndata: \{/);
    assert.ok((JSON.parse(text.split('\n')[1]!.slice(6)) as Stats).services.some((x) => x.name === 'backend'));
  });

  test('bad parameters are 400s', async () => {
    for (const q of ['stats?window=1h', 'stats?namespace=Bad_NS', 'timeseries', 'tap', 'tap?service=a&proxy=b', 'tap?service=a&path=x']) {
      const r = await fetch(`${cp.apiUrl}/apis/telemetry/v1/${q}`);
      assert.equal(r.status, 400, q);
      await r.body?.cancel();
    }
    assert.equal((await fetch(`${cp.apiUrl}/apis/telemetry/v1/nope`)).status, 404);
  });

  test('tap: filtered events while it runs; closing the connection stops it on the proxy', async () => {
    assert.equal(await webTaps(), 0);
    const tap = await openTap('service=backend&namespace=default&path=/tapped&method=GET');
    assert.equal(tap.res.statusCode, 200);
    // backend's own sidecar (all its traffic) and web's (its outbound requests to backend).
    assert.equal(tap.res.headers['x-weft-tap-proxies'], '2');
    await waitFor('the proxies run the tap', async () => ((await proxies()).every((p) => p.activeTaps === 1)) || undefined);
    await get('/not-this');
    await get('/tapped/1', 'POST');
    const r = await get('/tapped/2?x=1');
    // One event from each side of the request, in either order.
    const both = [JSON.parse(await tap.next()), JSON.parse(await tap.next())] as Record<string, unknown>[];
    assert.deepEqual(both.map((e) => e.direction).sort(), ['inbound', 'outbound']);
    assert.equal(both[0]!.requestId, both[1]!.requestId);
    assert.equal(both.find((e) => e.direction === 'inbound')!.proxy, 'backend-sidecar');
    const ev = both.find((e) => e.direction === 'outbound')!;
    assert.equal(ev.path, '/tapped/2');
    assert.equal(ev.method, 'GET');
    assert.equal(ev.status, r.status);
    assert.equal(ev.direction, 'outbound');
    assert.deepEqual(ev.source, { name: 'web', namespace: 'default' });
    assert.deepEqual(ev.destination, { name: 'backend', namespace: 'default' });
    assert.equal(ev.authority, 'backend.default');
    assert.match(String(ev.proxy), /web/);
    assert.equal(typeof ev.requestId, 'string');
    assert.ok(typeof ev.durationMs === 'number' && typeof ev.time === 'string');
    tap.close();
    await waitFor('the tap is stopped on the proxy', async () => (await webTaps()) === 0 || undefined);
  });

  test('tap as Server-Sent Events, ended by limit=1', async () => {
    const r = await fetch(`${cp.apiUrl}/apis/telemetry/v1/tap?service=backend&namespace=default&path=/sse&limit=1`, { headers: { accept: 'text/event-stream' } });
    assert.match(r.headers.get('content-type') ?? '', /^text\/event-stream/);
    await waitFor('the proxy runs the tap', async () => (await webTaps()) === 1 || undefined);
    await get('/sse/x');
    const text = await r.text(); // the server ends the stream after `limit` events
    assert.match(text, /^event: tap\ndata: \{.*"path":"\/sse\/x".*\}\n\n$/s);
    await waitFor('the tap is stopped on the proxy', async () => (await webTaps()) === 0 || undefined);
  });

  test('tap: a proxy over its rate limit drops events and says how many', async () => {
    const tap = await openTap('proxy=' + encodeURIComponent((await proxies()).find((p) => p.service.name === 'web')!.id) + '&rate=2');
    await waitFor('the proxy runs the tap', async () => (await webTaps()) === 1 || undefined);
    await Promise.all(Array.from({ length: 20 }, () => get('/burst')));
    const events: unknown[] = [];
    let dropped = 0;
    // Every request is accounted for: sent as an event, or dropped and counted.
    while (events.length + dropped < 20) {
      const line = await tap.next().catch((e: unknown) => { throw new Error(`${String(e)}; so far ${events.length} events, ${dropped} dropped: ${tap.lines.join(' | ').slice(0, 3000)}`); });
      const v = JSON.parse(line) as { dropped?: number };
      if (v.dropped !== undefined) dropped += v.dropped;
      else events.push(v);
    }
    assert.equal(events.length + dropped, 20);
    assert.ok(events.length >= 2 && dropped >= 10, `events ${events.length}, dropped ${dropped}`);
    tap.close();
    await waitFor('the tap is stopped on the proxy', async () => (await webTaps()) === 0 || undefined);
  });
});
