// Proxy-to-proxy multiplexing: HTTP/1.1 downstream requests to a cluster whose
// HttpProtocolOptions say HTTP/2 (what the control plane sets for mesh-internal
// clusters) ride one multiplexed HTTP/2 connection upstream, chunked bodies included.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { listener, routeConfig, staticCluster } from '../fixtures/proxy/helpers.js';
import { H2_PROTOCOL_OPTIONS, startH2Upstream, type H2Upstream } from '../fixtures/proxy/h2.js';

const N = 50;
let h2: H2Upstream;
let proxy: Proxy;
let port: number;
/** Streams held until all N are open at once (proves they are concurrent, not sequential). */
const pending: { stream: ServerHttp2Stream; headers: IncomingHttpHeaders; body: Promise<string> }[] = [];

before(async () => {
  h2 = await startH2Upstream('mesh-peer', (stream, headers) => {
    const chunks: Buffer[] = [];
    const body = new Promise<string>((r) => { stream.on('data', (c: Buffer) => chunks.push(c)); stream.on('end', () => r(Buffer.concat(chunks).toString())); });
    pending.push({ stream, headers, body });
    if (pending.length === N) {
      for (const p of pending.splice(0)) {
        void p.body.then((b) => {
          if (p.stream.destroyed) return;
          p.stream.respond({ ':status': 200, 'content-type': 'text/plain' });
          p.stream.end(`${String(p.headers[':path'])} ${b.length}`);
        });
      }
    }
  });
  proxy = await startProxy({
    adminAddr: '127.0.0.1:0',
    logLevel: 'silent',
    bootstrap: {
      static_resources: {
        listeners: [listener('out', { route_config: routeConfig('r', [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'peer' } }] }]) })],
        clusters: [staticCluster('peer', [h2.port], { typed_extension_protocol_options: H2_PROTOCOL_OPTIONS })],
      },
    },
  });
  port = proxy.listenerPort('out')!;
});

after(async () => {
  await proxy.close();
  await h2.close();
});

/** One HTTP/1.1 request on its own connection; with `chunks`, a chunked body (no content-length). */
function h1(path: string, chunks?: string[]): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: chunks === undefined ? 'GET' : 'POST', agent: false, headers: { host: 'catalog.default' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.setTimeout(15_000, () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    if (chunks === undefined) return void req.end();
    for (const c of chunks) req.write(c);
    req.end();
  });
}

describe('HTTP/1.1 downstream → one multiplexed HTTP/2 upstream connection', () => {
  test(`${N} concurrent HTTP/1.1 requests (half with chunked bodies) share 1 upstream TCP connection`, async () => {
    const replies = await Promise.all(Array.from({ length: N }, (_, i) =>
      i % 2 === 0 ? h1(`/get/${i}`) : h1(`/post/${i}`, ['a'.repeat(1000), 'b'.repeat(3000), 'c'.repeat(i)])));
    replies.forEach((r, i) => {
      assert.equal(r.status, 200);
      assert.equal(r.text, i % 2 === 0 ? `/get/${i} 0` : `/post/${i} ${4000 + i}`);
    });
    assert.equal(h2.sessions.length, 1, 'one upstream HTTP/2 connection');
    assert.equal(h2.seen.length, N);
    // No hop-by-hop headers of the HTTP/1.1 request on the h2 stream.
    assert.ok(h2.seen.every((h) => h['transfer-encoding'] === undefined && h.connection === undefined && h[':authority'] === 'catalog.default'));
    const stats = await (await fetch(`${proxy.adminUrl}/stats`)).text();
    assert.match(stats, /^cluster\.peer\.upstream_cx_total: 1$/m);
    assert.match(stats, new RegExp(`^cluster\\.peer\\.upstream_rq_total: ${N}$`, 'm'));
  });
});
