// Routing end to end: a proxy started from a static Envoy bootstrap, node:http
// upstreams, requests over real sockets (and curl in explicit proxy mode).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { call, listener, routeConfig, staticCluster, startUpstream, type Upstream } from '../fixtures/proxy/helpers.js';

const run = promisify(execFile);

let catalog: Upstream;
let reviews: Upstream;
let proxy: Proxy;
let port: number;

const direct = (body: string): Record<string, unknown> => ({ direct_response: { status: 200, body: { inline_string: body } } });

before(async () => {
  catalog = await startUpstream('catalog');
  reviews = await startUpstream('reviews');
  const rc = routeConfig('outbound', [
    {
      name: 'catalog',
      domains: ['catalog.default', 'catalog.default:80'],
      request_headers_to_add: [{ header: { key: 'x-level', value: 'vhost' }, append_action: 'APPEND_IF_EXISTS_OR_ADD' }],
      response_headers_to_add: [{ header: { key: 'x-vhost-resp', value: 'v' } }],
      routes: [
        { match: { path: '/exact' }, ...direct('exact') },
        { match: { prefix: '/old/' }, route: { cluster: 'catalog', prefix_rewrite: '/new/' } },
        { match: { safe_regex: { regex: '/re/[0-9]+' } }, route: { cluster: 'catalog', regex_rewrite: { pattern: { regex: '^/re/([0-9]+)$' }, substitution: '/num/\\1' } } },
        { match: { path_separated_prefix: '/api' }, ...direct('api') },
        { match: { prefix: '/case', case_sensitive: false }, ...direct('case') },
        { match: { prefix: '/h', headers: [{ name: 'x-exact', string_match: { exact: 'yes' } }] }, ...direct('h-exact') },
        { match: { prefix: '/h', headers: [{ name: 'x-prefix', string_match: { prefix: 'ab' } }] }, ...direct('h-prefix') },
        { match: { prefix: '/h', headers: [{ name: 'x-suffix', string_match: { suffix: 'yz' } }] }, ...direct('h-suffix') },
        { match: { prefix: '/h', headers: [{ name: 'x-contains', string_match: { contains: 'mid' } }] }, ...direct('h-contains') },
        { match: { prefix: '/h', headers: [{ name: 'x-present', present_match: true }] }, ...direct('h-present') },
        { match: { prefix: '/h', headers: [{ name: 'x-regex', safe_regex_match: { regex: 'v[0-9]+' } }] }, ...direct('h-regex') },
        { match: { prefix: '/h', headers: [{ name: 'x-env', string_match: { exact: 'prod' }, invert_match: true }] }, ...direct('h-invert') },
        { match: { prefix: '/q', query_parameters: [{ name: 'v', string_match: { exact: '2' } }] }, ...direct('q-v2') },
        { match: { prefix: '/q', query_parameters: [{ name: 'flag', present_match: true }] }, ...direct('q-flag') },
        { match: { prefix: '/redirect' }, redirect: { host_redirect: 'new.example', path_redirect: '/moved', response_code: 'FOUND' } },
        { match: { prefix: '/secure' }, redirect: { https_redirect: true } },
        { match: { prefix: '/split' }, route: { weighted_clusters: { clusters: [{ name: 'catalog', weight: 80 }, { name: 'reviews', weight: 20 }] } } },
        { match: { prefix: '/hostrw' }, route: { cluster: 'catalog', host_rewrite_literal: 'rewritten.example' } },
        {
          match: { prefix: '/hdrs' },
          route: { cluster: 'catalog' },
          request_headers_to_add: [{ header: { key: 'x-level', value: 'route' }, append_action: 'APPEND_IF_EXISTS_OR_ADD' }, { header: { key: 'x-set', value: 'new' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
          request_headers_to_remove: ['x-drop'],
          response_headers_to_add: [{ header: { key: 'x-route-resp', value: 'r' } }],
          response_headers_to_remove: ['x-upstream'],
        },
        { match: { prefix: '/' }, route: { cluster: 'catalog' } },
      ],
    },
    { name: 'reviews', domains: ['reviews.default:9080'], routes: [{ match: { prefix: '/' }, route: { cluster: 'reviews' } }] },
    { name: 'suffix', domains: ['*.example.com'], routes: [{ match: { prefix: '/' }, ...direct('suffix') }] },
    { name: 'longer-suffix', domains: ['*.b.example.com'], routes: [{ match: { prefix: '/' }, ...direct('longer-suffix') }] },
    { name: 'prefix', domains: ['api.*'], routes: [{ match: { prefix: '/' }, ...direct('prefix-wild') }] },
    { name: 'exact-wins', domains: ['x.b.example.com'], routes: [{ match: { prefix: '/' }, ...direct('exact-host') }] },
    { name: 'any', domains: ['*'], routes: [{ match: { prefix: '/only-here' }, ...direct('catch-all') }] },
  ], {
    request_headers_to_add: [{ header: { key: 'x-level', value: 'config' }, append_action: 'APPEND_IF_EXISTS_OR_ADD' }],
    response_headers_to_add: [{ header: { key: 'x-config-resp', value: 'c' } }],
  });
  proxy = await startProxy({
    adminAddr: '127.0.0.1:0',
    logLevel: 'silent',
    bootstrap: {
      static_resources: {
        listeners: [listener('outbound', { route_config: rc })],
        clusters: [staticCluster('catalog', [catalog.port]), staticCluster('reviews', [reviews.port])],
      },
    },
  });
  port = proxy.listenerPort('outbound')!;
});

after(async () => {
  await proxy?.close();
  await catalog?.close();
  await reviews?.close();
});

const get = (path: string, headers: Record<string, string> = {}) => call(port, path, { headers: { host: 'catalog.default', ...headers } });

describe('virtual host selection', () => {
  test('Host header picks the virtual host; the upstream gets the request', async () => {
    const r = await get('/items?x=1');
    assert.equal(r.status, 200);
    const j = r.json<{ name: string; url: string }>();
    assert.equal(j.name, 'catalog');
    assert.equal(j.url, '/items?x=1');
  });

  test('curl in explicit proxy mode (absolute-form URI)', async () => {
    const { stdout } = await run('/usr/bin/curl', ['-sS', '-x', `http://127.0.0.1:${port}`, 'http://catalog.default/items']);
    const j = JSON.parse(stdout) as { name: string; url: string; headers: Record<string, string> };
    assert.equal(j.name, 'catalog');
    assert.equal(j.url, '/items');
    assert.equal(j.headers.host, 'catalog.default');
    assert.equal(j.headers['proxy-connection'], undefined, 'hop-by-hop Proxy-Connection removed');
  });

  test('host:port domains', async () => {
    const r = await call(port, '/r', { headers: { host: 'reviews.default:9080' } });
    assert.equal(r.json<{ name: string }>().name, 'reviews');
    assert.equal((await call(port, '/r', { headers: { host: 'reviews.default' } })).status, 404, 'no port → no match (Envoy does not strip by default)');
    assert.equal((await get('/items', { host: 'CATALOG.default' })).status, 200, 'case-insensitive');
  });

  test('wildcards: exact > longest *.suffix > prefix.* > *', async () => {
    const body = async (h: string, p = '/'): Promise<string> => (await call(port, p, { headers: { host: h } })).text;
    assert.equal(await body('a.example.com'), 'suffix');
    assert.equal(await body('a.b.example.com'), 'longer-suffix');
    assert.equal(await body('x.b.example.com'), 'exact-host');
    assert.equal(await body('api.anything'), 'prefix-wild');
    assert.equal(await body('unknown.host', '/only-here'), 'catch-all');
    const nr = await call(port, '/nope', { headers: { host: 'unknown.host' } });
    assert.equal(nr.status, 404);
    assert.equal(nr.headers['x-weft-response-flags'], 'NR');
  });
});

describe('route matching', () => {
  test('path, prefix, regex, path_separated_prefix, case_sensitive', async () => {
    assert.equal((await get('/exact')).text, 'exact');
    assert.equal((await get('/exact/more')).json<{ url: string }>().url, '/exact/more', 'path is exact');
    assert.equal((await get('/api')).text, 'api');
    assert.equal((await get('/api/v1')).text, 'api');
    assert.equal((await get('/api?x')).text, 'api');
    assert.equal((await get('/apix')).json<{ name: string }>().name, 'catalog', '/apix is not under /api');
    assert.equal((await get('/CaSe/x')).text, 'case');
    assert.equal((await get('/re/42')).json<{ url: string }>().url, '/num/42', 'regex match + regex_rewrite');
    assert.equal((await get('/re/4x')).json<{ url: string }>().url, '/re/4x', 'regex must match the whole path');
  });

  test('header matchers', async () => {
    const cases: [Record<string, string>, string][] = [
      [{ 'x-exact': 'yes' }, 'h-exact'],
      [{ 'x-prefix': 'abc' }, 'h-prefix'],
      [{ 'x-suffix': 'xyz' }, 'h-suffix'],
      [{ 'x-contains': 'amidb' }, 'h-contains'],
      [{ 'x-present': '' }, 'h-present'],
      [{ 'x-regex': 'v12' }, 'h-regex'],
      [{ 'x-env': 'dev' }, 'h-invert'],
    ];
    for (const [headers, want] of cases) assert.equal((await get('/h', headers)).text, want, JSON.stringify(headers));
    // Non-matching values fall through to the catch-all route.
    const misses: Record<string, string>[] = [{ 'x-exact': 'no' }, { 'x-regex': 'v12x' }, { 'x-env': 'prod' }, {}];
    for (const headers of misses) {
      assert.equal((await get('/h', headers)).json<{ name: string }>().name, 'catalog', JSON.stringify(headers));
    }
  });

  test('query parameter matchers', async () => {
    assert.equal((await get('/q?v=2')).text, 'q-v2');
    assert.equal((await get('/q?a=1&flag')).text, 'q-flag');
    assert.equal((await get('/q?v=3')).json<{ name: string }>().name, 'catalog');
  });
});

describe('route actions', () => {
  test('prefix_rewrite and host_rewrite_literal', async () => {
    assert.equal((await get('/old/thing?a=b')).json<{ url: string }>().url, '/new/thing?a=b');
    const j = (await get('/hostrw')).json<{ headers: Record<string, string> }>();
    assert.equal(j.headers.host, 'rewritten.example');
  });

  test('redirects', async () => {
    const r = await get('/redirect?q=1');
    assert.equal(r.status, 302);
    assert.equal(r.headers.location, 'http://new.example/moved?q=1');
    const s = await get('/secure/x', { host: 'catalog.default:80' });
    assert.equal(s.status, 301);
    assert.equal(s.headers.location, 'https://catalog.default/secure/x');
  });

  test('weighted clusters split by weight', async () => {
    const counts: Record<string, number> = { catalog: 0, reviews: 0 };
    for (let i = 0; i < 300; i++) counts[(await get('/split')).json<{ name: string }>().name]!++;
    assert.ok(counts.catalog! > 200 && counts.catalog! < 270, JSON.stringify(counts));
    assert.ok(counts.reviews! > 30, JSON.stringify(counts));
  });

  test('request and response header mutations at route, vhost and config level', async () => {
    const r = await get('/hdrs', { 'x-drop': '1', 'x-set': 'old', 'x-keep': 'k' });
    const h = r.json<{ headers: Record<string, string> }>().headers;
    assert.equal(h['x-drop'], undefined);
    assert.equal(h['x-set'], 'new');
    assert.equal(h['x-keep'], 'k');
    // Envoy's default order: most specific first (route, vhost, config).
    assert.equal(h['x-level'], 'route, vhost, config');
    assert.equal(r.headers['x-route-resp'], 'r');
    assert.equal(r.headers['x-vhost-resp'], 'v');
    assert.equal(r.headers['x-config-resp'], 'c');
    assert.equal(r.headers['x-upstream'], undefined, 'response_headers_to_remove');
  });

  test('forwarding headers: hop-by-hop removed, x-forwarded-for, x-request-id', async () => {
    const r = await get('/fwd', { connection: 'keep-alive, x-secret', 'x-secret': 's', 'keep-alive': 'timeout=5', te: 'trailers', 'x-forwarded-for': '10.0.0.1' });
    const h = r.json<{ headers: Record<string, string> }>().headers;
    assert.equal(h['x-secret'], undefined, 'header named in Connection removed');
    assert.equal(h['keep-alive'], undefined);
    assert.equal(h.te, undefined);
    assert.equal(h['x-forwarded-for'], '10.0.0.1, 127.0.0.1');
    assert.match(h['x-request-id'] ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(r.headers['x-request-id'], undefined, 'x-request-id is not echoed by default');
    assert.ok(r.headers['x-weft-upstream-service-time'] !== undefined);
    const kept = (await get('/fwd', { 'x-request-id': 'abc' })).json<{ headers: Record<string, string> }>().headers;
    assert.equal(kept['x-request-id'], 'abc');
  });

  test('bodies stream both ways (1 MiB upload echoed back)', async () => {
    const body = Buffer.alloc(1 << 20, 'a');
    const r = await call(port, '/upload', { method: 'POST', headers: { host: 'catalog.default', 'content-type': 'text/plain' }, body });
    assert.equal(r.status, 200);
    assert.equal(r.json<{ body: string }>().body.length, body.length);
  });
});
