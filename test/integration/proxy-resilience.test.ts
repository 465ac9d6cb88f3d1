// Retries and circuit breaking against real upstreams that fail on purpose: each
// test counts the attempts the upstreams saw.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type ClientRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startProxy, type AccessLogEntry, type Proxy } from '../../src/proxy/proxy.js';
import { call, listener, routeConfig, staticCluster, startUpstream, waitFor, type Upstream } from '../fixtures/proxy/helpers.js';

const ups: Upstream[] = [];
let proxy: Proxy;
let port: number;
const log: AccessLogEntry[] = [];
let flakyCount = 0;
let hangFirst = 0;
const up = async (name: string, h?: Parameters<typeof startUpstream>[1]): Promise<Upstream> => { const u = await startUpstream(name, h); ups.push(u); return u; };
let flaky: Upstream; let down: Upstream; let okA: Upstream; let okB: Upstream; let bad: Upstream; let slowBad: Upstream; let slowBad2: Upstream;
let perTry: Upstream; let hang: Upstream; let flakyPost: Upstream; let deadPort: number;

const fail503 = (_req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void => {
  res.writeHead(503, { 'content-type': 'text/plain' }); res.end('down');
};

before(async () => {
  // Fails every other request: the first attempt of each request fails, its retry succeeds.
  flaky = await up('flaky', (_req, res) => {
    if (flakyCount++ % 2 === 0) return fail503(_req, res);
    res.writeHead(200); res.end('recovered');
  });
  down = await up('down', fail503);
  okA = await up('ok-a');
  okB = await up('ok-b');
  bad = await up('bad', fail503);
  slowBad = await up('slow-bad', (req, res) => { setTimeout(() => fail503(req, res), 60); });
  slowBad2 = await up('slow-bad-2', (req, res) => { setTimeout(() => fail503(req, res), 60); });
  perTry = await up('per-try', (_req, res) => {
    if (hangFirst++ === 0) return; // hangs: the per-try timeout gives up on it
    res.writeHead(200); res.end('second');
  });
  hang = await up('hang', () => { /* never answers */ });
  flakyPost = await up('flaky-post', (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (flakyPost.seen.length % 2 === 1) return fail503(req, res);
      res.writeHead(200); res.end(Buffer.concat(chunks));
    });
  });
  const dead = createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', () => r()));
  deadPort = (dead.address() as AddressInfo).port;
  await new Promise<void>((r) => dead.close(() => r()));

  const retry = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    retry_on: '5xx,connect-failure', num_retries: { value: 2 }, retry_back_off: { base_interval: '0.001s', max_interval: '0.005s' }, ...extra,
  });
  const noPost = [{ name: ':method', string_match: { safe_regex: { google_re2: {}, regex: 'POST|PATCH' } }, invert_match: true }];
  const route = (prefix: string, cluster: string, extra: Record<string, unknown> = {}, routeExtra: Record<string, unknown> = {}): Record<string, unknown> => ({ match: { prefix }, route: { cluster, ...extra }, ...routeExtra });
  const rc = routeConfig('r', [{
    name: 'svc',
    domains: ['svc'],
    routes: [
      route('/flaky', 'flaky', { retry_policy: retry() }),
      route('/down', 'down', { retry_policy: retry() }),
      route('/other-host', 'bad-and-good', { retry_policy: retry({ num_retries: 1 }) }),
      route('/connect', 'dead-and-good', { retry_policy: retry({ retry_on: 'connect-failure', num_retries: 1 }) }),
      route('/no-post', 'down', { retry_policy: retry({ retriable_request_headers: noPost }) }),
      route('/post', 'flaky-post', { retry_policy: retry() }),
      route('/big-post', 'flaky-post', { retry_policy: retry() }, { per_request_buffer_limit_bytes: 16 }),
      route('/per-try', 'per-try', { retry_policy: retry({ retry_on: '5xx', per_try_timeout: '0.15s' }) }),
      route('/status-codes', 'down', { retry_policy: retry({ retry_on: 'retriable-status-codes', retriable_status_codes: [418] }) }),
      route('/budget', 'slow-bad-budget', { retry_policy: retry({ num_retries: 3 }), timeout: '10s' }),
      route('/no-budget', 'slow-bad-unbounded', { retry_policy: retry({ num_retries: 3 }), timeout: '10s' }),
      route('/cb-requests', 'cb-requests', { timeout: '0s' }),
      route('/cb-pending', 'cb-pending', { timeout: '0s' }),
    ],
  }]);
  const thresholds = (t: Record<string, unknown>): Record<string, unknown> => ({ circuit_breakers: { thresholds: [{ priority: 'DEFAULT', ...t }] } });
  proxy = await startProxy({
    adminAddr: '127.0.0.1:0',
    logLevel: 'silent',
    onAccessLog: (e) => log.push(e),
    bootstrap: {
      static_resources: {
        listeners: [listener('out', { route_config: rc })],
        clusters: [
          staticCluster('flaky', [flaky.port]),
          staticCluster('down', [down.port]),
          staticCluster('bad-and-good', [bad.port, okA.port]),
          staticCluster('dead-and-good', [deadPort, okB.port]),
          staticCluster('flaky-post', [flakyPost.port]),
          staticCluster('per-try', [perTry.port]),
          staticCluster('slow-bad-budget', [slowBad.port], thresholds({ retry_budget: { budget_percent: { value: 10 }, min_retry_concurrency: { value: 1 } } })),
          staticCluster('slow-bad-unbounded', [slowBad2.port], thresholds({ max_retries: { value: 1000 } })),
          staticCluster('cb-requests', [hang.port], thresholds({ max_requests: { value: 2 } })),
          staticCluster('cb-pending', [hang.port], thresholds({ max_connections: { value: 1 }, max_pending_requests: { value: 1 } })),
        ],
      },
    },
  });
  port = proxy.listenerPort('out')!;
});

after(async () => {
  await proxy?.close();
  await Promise.all(ups.map((u) => u.close()));
});

const get = (path: string, opts: Parameters<typeof call>[2] = {}) => call(port, path, { ...opts, headers: { host: 'svc', ...(opts.headers ?? {}) } });
const entry = (path: string) => waitFor(`access log for ${path}`, () => log.find((e) => e.path === path));

describe('retries', () => {
  test('a backend failing the first attempt recovers on the retry', async () => {
    const before = flaky.seen.length;
    const r = await get('/flaky');
    assert.equal(r.status, 200);
    assert.equal(r.text, 'recovered');
    assert.equal(flaky.seen.length - before, 2);
    assert.equal((await entry('/flaky')).flag, undefined);
  });

  test('a backend always failing: N+1 attempts, then its last response with flag URX', async () => {
    const before = down.seen.length;
    const r = await get('/down');
    assert.equal(r.status, 503);
    assert.equal(r.text, 'down');
    assert.equal(down.seen.length - before, 3);
    const e = await entry('/down');
    assert.equal(e.flag, 'URX');
    assert.equal(e.status, 503);
  });

  test('the retry goes to another host than the one that failed', async () => {
    for (let i = 0; i < 10; i++) {
      const r = await get('/other-host');
      assert.equal(r.status, 200, `request ${i}`);
      assert.equal(r.json<{ name: string }>().name, 'ok-a');
    }
    // Round robin sends half the first attempts to the bad host; each of those was retried once, elsewhere.
    assert.ok(bad.seen.length >= 1 && bad.seen.length <= 10, `bad saw ${bad.seen.length}`);
  });

  test('connect failures are retried on another host', async () => {
    for (let i = 0; i < 6; i++) assert.equal((await get('/connect')).status, 200);
  });

  test('POST is not retried when retriable_request_headers exclude it (the control plane\'s default)', async () => {
    const before = down.seen.length;
    const r = await get('/no-post', { method: 'POST', body: 'x' });
    assert.equal(r.status, 503);
    assert.equal(down.seen.length - before, 1);
    const g = await get('/no-post');
    assert.equal(g.status, 503);
    assert.equal(down.seen.length - before, 4);
  });

  test('a request body is buffered and replayed on the retry', async () => {
    const before = flakyPost.seen.length;
    const r = await get('/post', { method: 'POST', body: 'hello body' });
    assert.equal(r.status, 200);
    assert.equal(r.text, 'hello body');
    assert.equal(flakyPost.seen.length - before, 2);
  });

  test('a body larger than the buffer limit streams through and is not retried', async () => {
    const before = flakyPost.seen.length;
    const r = await get('/big-post', { method: 'POST', body: 'x'.repeat(100) });
    assert.equal(r.status, 503);
    assert.equal(flakyPost.seen.length - before, 1);
  });

  test('per_try_timeout abandons a hung attempt and retries', async () => {
    const t0 = Date.now();
    const r = await get('/per-try');
    assert.equal(r.status, 200);
    assert.equal(r.text, 'second');
    assert.equal(perTry.seen.length, 2);
    assert.ok(Date.now() - t0 < 5000);
  });

  test('retriable-status-codes only retries the listed codes', async () => {
    const before = down.seen.length;
    assert.equal((await get('/status-codes')).status, 503);
    assert.equal(down.seen.length - before, 1);
  });

  test('the retry budget caps retries under a failing backend (attempts per request)', async () => {
    const n = 20;
    const burst = async (path: string): Promise<number[]> => (await Promise.all(Array.from({ length: n }, () => get(path)))).map((r) => r.status);
    const [budgeted, unbounded] = await Promise.all([burst('/budget'), burst('/no-budget')]);
    assert.ok(budgeted.every((s) => s === 503));
    assert.ok(unbounded.every((s) => s === 503));
    // Without a budget every request makes 1 + 3 attempts.
    assert.equal(slowBad2.seen.length, n * 4);
    // 10% of ~20 active requests, at least 1: a handful of retries in flight at a time.
    const ratio = slowBad.seen.length / n;
    assert.ok(ratio <= 1.5, `attempts per request with a budget: ${ratio}`);
    console.log(`# retry budget: ${ratio} attempts per request (without: 4)`);
    const flags = log.filter((e) => e.path === '/budget').map((e) => e.flag);
    assert.ok(flags.includes('UO'), 'overflowed retries are flagged UO');
    const text = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
    assert.match(text, /weft_upstream_rq_retry_overflow_total\{cluster_name="slow-bad-budget"\} [1-9]/);
  });
});

/** A request left in flight (its upstream never answers) until destroyed. */
const hold = (path: string): ClientRequest => {
  const r = request({ host: '127.0.0.1', port, path, headers: { host: 'svc' }, agent: false });
  r.on('error', () => {});
  r.end();
  return r;
};

describe('circuit breaking', () => {
  test('max_requests: the request beyond the limit gets 503 UO, counted in /metrics', async () => {
    const held = [0, 1].map(() => hold('/cb-requests'));
    await waitFor('two requests in flight', () => hang.seen.filter((s) => s.url === '/cb-requests').length === 2);
    const r = await get('/cb-requests');
    assert.equal(r.status, 503);
    assert.equal(r.headers['x-weft-response-flags'], 'UO');
    for (const h of held) h.destroy();
    const text = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
    assert.match(text, /weft_upstream_rq_pending_overflow_total\{cluster_name="cb-requests"\} [1-9]/);
  });

  test('max_pending_requests: with the one connection busy, one request may wait, the next overflows', async () => {
    const held = [0, 1].map(() => hold('/cb-pending'));
    await waitFor('one request upstream', () => hang.seen.some((s) => s.url === '/cb-pending'));
    await waitFor('one request pending', () => {
      const c = proxy.snapshot().clusters.get('cb-pending')!;
      return c.stats.upstreamRqActive === 2;
    });
    const r = await get('/cb-pending');
    assert.equal(r.status, 503);
    assert.equal(r.headers['x-weft-response-flags'], 'UO');
    for (const h of held) h.destroy();
  });
});
