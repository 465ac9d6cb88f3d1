// HTTP/2: h2c (prior knowledge) and HTTP/1.1 on the same listener, HTTP/2 upstreams
// (one multiplexed session per endpoint, a new one after GOAWAY), and h2load through
// the proxy.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { ClientHttp2Session } from 'node:http2';
import { startProxy, type AccessLogEntry, type Proxy } from '../../src/proxy/proxy.js';
import { call, listener, routeConfig, staticCluster, startUpstream, waitFor, type Upstream } from '../fixtures/proxy/helpers.js';
import { H2_PROTOCOL_OPTIONS, h2call, h2connect, startH2Upstream, type H2Upstream } from '../fixtures/proxy/h2.js';

let h1: Upstream;
let h2: H2Upstream;
let h2old: H2Upstream;
let proxy: Proxy;
let port: number;
let client: ClientHttp2Session | undefined;
const log: AccessLogEntry[] = [];

before(async () => {
  h1 = await startUpstream('h1');
  h2 = await startH2Upstream('h2');
  h2old = await startH2Upstream('h2-deprecated-option');
  const rc = routeConfig('r', [{
    name: 'all',
    domains: ['*'],
    routes: [
      { match: { prefix: '/h2/' }, route: { cluster: 'h2' } },
      { match: { prefix: '/h2old/' }, route: { cluster: 'h2old' } },
      { match: { prefix: '/' }, route: { cluster: 'h1' } },
    ],
  }]);
  proxy = await startProxy({
    adminAddr: '127.0.0.1:0',
    logLevel: 'silent',
    onAccessLog: (e) => log.push(e),
    bootstrap: {
      static_resources: {
        listeners: [listener('in', { route_config: rc })],
        clusters: [
          staticCluster('h1', [h1.port]),
          staticCluster('h2', [h2.port], { typed_extension_protocol_options: H2_PROTOCOL_OPTIONS }),
          staticCluster('h2old', [h2old.port], { http2_protocol_options: {} }),
        ],
      },
    },
  });
  port = proxy.listenerPort('in')!;
});

after(async () => {
  client?.close();
  await proxy.close();
  await h1.close();
  await h2.close();
  await h2old.close();
});

describe('downstream HTTP/2 (h2c prior knowledge) next to HTTP/1.1', () => {
  test('h2c and HTTP/1.1 clients share the listener; h2 requests reach an HTTP/1.1 upstream', async () => {
    client = await h2connect(port);
    const r = await h2call(client, { ':path': '/items?x=1', ':method': 'GET', ':authority': 'catalog.default', 'x-test': 'a' });
    assert.equal(r.status, 200);
    const body = JSON.parse(r.text) as { name: string; url: string; headers: Record<string, string> };
    assert.equal(body.name, 'h1');
    assert.equal(body.url, '/items?x=1');
    assert.equal(body.headers.host, 'catalog.default');
    assert.equal(body.headers['x-test'], 'a');
    assert.ok(r.headers['x-weft-upstream-service-time'] !== undefined);
    const post = await h2call(client, { ':path': '/upload', ':method': 'POST', ':authority': 'x' }, 'payload');
    assert.equal((JSON.parse(post.text) as { body: string }).body, 'payload');
    const viaH1 = await call(port, '/plain', { headers: { host: 'x' } });
    assert.equal(viaH1.status, 200);
    assert.equal(viaH1.json<{ name: string }>().name, 'h1');
  });

  test('many concurrent streams on one downstream session', async () => {
    client ??= await h2connect(port);
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => h2call(client!, { ':path': `/n/${i}`, ':authority': 'x' })));
    assert.deepEqual(replies.map((r) => r.status), Array(20).fill(200));
    assert.deepEqual(replies.map((r) => (JSON.parse(r.text) as { url: string }).url), Array.from({ length: 20 }, (_, i) => `/n/${i}`));
  });
});

describe('HTTP/2 upstreams', () => {
  test('HTTP/1.1 and h2 requests ride one multiplexed session to the endpoint', async () => {
    const before = h2.sessions.length;
    const rs = await Promise.all([
      call(port, '/h2/a', { headers: { host: 'svc' } }),
      call(port, '/h2/b', { headers: { host: 'svc' }, method: 'POST', body: 'hello' }),
      h2call(client ??= await h2connect(port), { ':path': '/h2/c', ':authority': 'svc' }),
    ]);
    assert.deepEqual(rs.map((r) => r.status), [200, 200, 200]);
    const b = JSON.parse(rs[1]!.text) as { name: string; path: string; authority: string; body: string; headers: Record<string, string> };
    assert.equal(b.name, 'h2');
    assert.equal(b.path, '/h2/b');
    assert.equal(b.authority, 'svc');
    assert.equal(b.body, 'hello');
    assert.equal(b.headers['x-forwarded-proto'], 'http');
    assert.ok(h2.sessions.length - before <= 1, 'one session to the endpoint');
    await Promise.all(Array.from({ length: 10 }, () => call(port, '/h2/more', { headers: { host: 'svc' } })));
    assert.ok(h2.sessions.length - before <= 1, 'still one session');
  });

  test('after the upstream sends GOAWAY the next request opens a new session', async () => {
    await call(port, '/h2/warm', { headers: { host: 'svc' } });
    const n = h2.sessions.length;
    for (const s of h2.sessions) if (!s.closed) s.close();
    await waitFor('sessions closed', () => h2.sessions.every((s) => s.closed));
    const r = await call(port, '/h2/again', { headers: { host: 'svc' } });
    assert.equal(r.status, 200);
    assert.equal(h2.sessions.length, n + 1);
  });

  test('the deprecated cluster http2_protocol_options also selects HTTP/2', async () => {
    const r = await call(port, '/h2old/x', { headers: { host: 'svc' } });
    assert.equal(r.status, 200);
    assert.equal(r.json<{ name: string }>().name, 'h2-deprecated-option');
    assert.equal(h2old.seen.length, 1);
  });

  test('a dead HTTP/2 endpoint is a connect failure (UF)', async () => {
    const dead = await startH2Upstream('dead');
    const deadPort = dead.port;
    await dead.close();
    await proxy.applyResources('cluster', [staticCluster('h2dead', [deadPort], { typed_extension_protocol_options: H2_PROTOCOL_OPTIONS })], '1');
    const rc = routeConfig('r2', [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'h2dead' } }] }]);
    await proxy.applyResources('listener', [listener('dead', { route_config: rc })], '1');
    const r = await call(proxy.listenerPort('dead')!, '/x', { headers: { host: 'svc' } });
    assert.equal(r.status, 503);
    assert.equal(r.headers['x-weft-response-flags'], 'UF');
  });
});

describe('h2load through the proxy', { skip: !existsSync('/usr/bin/h2load') && 'h2load is not installed' }, () => {
  test('2000 requests over 4 h2c connections to an HTTP/2 upstream, zero errors', async () => {
    const out = await new Promise<string>((resolve, reject) => {
      execFile('/usr/bin/h2load', ['-n', '2000', '-c', '4', '-m', '8', `http://127.0.0.1:${port}/h2/load`], { timeout: 60_000 }, (err, stdout) => {
        if (err !== null) reject(err);
        else resolve(stdout);
      });
    });
    const m = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(out);
    assert.ok(m !== null, out);
    assert.equal(Number(m[4]), 2000, out);
    assert.equal(Number(m[5]), 0, out);
    assert.equal(Number(m[6]), 0, out);
    assert.match(out, /status codes: 2000 2xx/);
  });
});
