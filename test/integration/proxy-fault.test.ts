// Fault injection and local rate limiting through the proxy, configured the way the
// control plane emits them: empty filters on the HCM before the router, the real
// configs in each route's typed_per_filter_config.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, type AccessLogEntry, type Proxy } from '../../src/proxy/proxy.js';
import { call, listener, routeConfig, staticCluster, startUpstream, waitFor, ROUTER_TYPE, type Upstream } from '../fixtures/proxy/helpers.js';

const FAULT = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
const RL = 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';
let ok: Upstream;
let proxy: Proxy;
let port: number;
const log: AccessLogEntry[] = [];

before(async () => {
  ok = await startUpstream('ok');
  const always = { default_value: { numerator: 100, denominator: 'HUNDRED' }, runtime_key: 'weft.local_rate_limit' };
  const route = (prefix: string, perFilter?: Record<string, unknown>): Record<string, unknown> => ({
    match: { prefix }, route: { cluster: 'ok' }, ...(perFilter === undefined ? {} : { typed_per_filter_config: perFilter }),
  });
  const rc = routeConfig('r', [{ name: 'svc', domains: ['svc'], routes: [
    route('/abort', { 'envoy.filters.http.fault': { '@type': FAULT, abort: { http_status: 503, percentage: { numerator: 100, denominator: 'HUNDRED' } } } }),
    route('/chaos', { 'envoy.filters.http.fault': { '@type': FAULT, abort: { http_status: 500, percentage: { numerator: 100 } }, headers: [{ name: 'x-chaos', string_match: { exact: 'on' } }] } }),
    route('/delay', { 'envoy.filters.http.fault': { '@type': FAULT, delay: { fixed_delay: { seconds: 0, nanos: 150_000_000 }, percentage: { numerator: 1_000_000, denominator: 'MILLION' } } } }),
    route('/grpc-abort', { 'envoy.filters.http.fault': { '@type': FAULT, abort: { grpc_status: 14, percentage: { numerator: 100 } } } }),
    route('/limited', { 'envoy.filters.http.local_ratelimit': { '@type': RL, stat_prefix: 'weft_local_rate_limit', token_bucket: { max_tokens: 3, tokens_per_fill: { value: 3 }, fill_interval: { seconds: 60 } }, filter_enabled: always, filter_enforced: always } }),
    route('/'),
  ] }]);
  const filters = [
    { name: 'envoy.filters.http.local_ratelimit', typed_config: { '@type': RL, stat_prefix: 'weft_local_rate_limit' } },
    { name: 'envoy.filters.http.fault', typed_config: { '@type': FAULT } },
    { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE } },
  ];
  proxy = await startProxy({
    adminAddr: '127.0.0.1:0',
    logLevel: 'silent',
    onAccessLog: (e) => log.push(e),
    bootstrap: { static_resources: { listeners: [listener('out', { route_config: rc }, 0, { http_filters: filters })], clusters: [staticCluster('ok', [ok.port])] } },
  });
  port = proxy.listenerPort('out')!;
});

after(async () => {
  await proxy?.close();
  await ok?.close();
});

const get = (path: string, headers: Record<string, string> = {}) => call(port, path, { headers: { host: 'svc', ...headers } });

describe('fault injection', () => {
  test('abort at 100%: the upstream never sees the request; flag FI', async () => {
    const before = ok.seen.length;
    const r = await get('/abort');
    assert.equal(r.status, 503);
    assert.equal(r.headers['x-weft-response-flags'], 'FI');
    assert.equal(ok.seen.length, before);
    assert.equal((await waitFor('log', () => log.find((e) => e.path === '/abort'))).flag, 'FI');
  });

  test('header match: only requests with x-chaos: on are aborted', async () => {
    assert.equal((await get('/chaos')).status, 200);
    assert.equal((await get('/chaos', { 'x-chaos': 'on' })).status, 500);
  });

  test('delay: the request is held, then forwarded', async () => {
    const t0 = performance.now();
    const r = await get('/delay');
    assert.equal(r.status, 200);
    assert.ok(performance.now() - t0 >= 140, 'delayed');
  });

  test('gRPC status abort: a trailers-only style reply with grpc-status', async () => {
    const r = await get('/grpc-abort', { 'content-type': 'application/grpc' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['grpc-status'], '14');
    assert.equal(r.headers['x-weft-response-flags'], 'FI');
  });

  test('routes without a fault config are untouched', async () => {
    assert.equal((await get('/other')).status, 200);
  });
});

describe('local rate limit', () => {
  test('the route bucket lets max_tokens through, then 429 RL with retry-after and x-ratelimit-*', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await get('/limited')).status, 200);
    const r = await get('/limited');
    assert.equal(r.status, 429);
    assert.equal(r.headers['x-weft-response-flags'], 'RL');
    assert.equal(r.headers['x-ratelimit-limit'], '3');
    assert.equal(r.headers['x-ratelimit-remaining'], '0');
    const reset = Number(r.headers['x-ratelimit-reset']);
    assert.ok(reset >= 1 && reset <= 60);
    assert.equal(r.headers['retry-after'], String(reset));
    // Other routes have no bucket: the listener-level entry limits nothing.
    for (let i = 0; i < 5; i++) assert.equal((await get('/free')).status, 200);
    const text = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
    assert.match(text, /weft_downstream_rq_total\{response_code_class="4xx",response_flags="RL"\} 1/);
  });
});
