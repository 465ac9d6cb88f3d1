// Active health checks and request mirrors over a cluster's UpstreamTlsContext, as
// Envoy does with the cluster's transport socket: against a real mTLS upstream
// (node:http2 secure server, HTTP/1.1 and h2 by ALPN, client certificate required),
// HTTP, TCP and gRPC health checks pass when the server presents the SPIFFE ID the
// cluster expects and fail with another; mirrored requests arrive over mTLS with our
// SVID, both on an http/1.1 connection and when the server picks h2 by ALPN.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createSecureServer, type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { call, listener, routeConfig, startUpstream, staticCluster, waitFor, type Upstream } from '../fixtures/proxy/helpers.js';
import { makeCa, upstreamTls, type Issued, type TestCa } from './proxy-tls-helpers.js';

const TD = 'weft.test';

interface Seen { path: string; host: string; version: string; body: string; peer: string }

let dir: string;
let ca: TestCa;
let server: Issued;
let client: Issued;
let tlsUp: Http2SecureServer;
let tlsPort: number;
const seen: Seen[] = [];
let primary: Upstream;
let proxy: Proxy;
let port: number;
let wrongId: string;

/** The mTLS upstream: /healthz 200, grpc.health.v1 SERVING, anything else recorded with the client's SPIFFE ID. */
function handle(req: Http2ServerRequest, res: Http2ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const sock = (req.httpVersionMajor === 2 ? req.stream.session?.socket : req.socket) as TLSSocket | undefined;
    const peer = (sock?.getPeerCertificate().subjectaltname ?? '').replace(/^URI:/, '');
    if (req.url === '/healthz') { res.writeHead(200); res.end('ok'); return; }
    if (req.url === '/grpc.health.v1.Health/Check') {
      res.writeHead(200, { 'content-type': 'application/grpc' });
      res.addTrailers({ 'grpc-status': '0' });
      res.end(Buffer.from([0, 0, 0, 0, 2, 0x08, 1])); // SERVING
      return;
    }
    seen.push({ path: req.url, host: String(req.headers[':authority'] ?? req.headers.host), version: req.httpVersion, body: Buffer.concat(chunks).toString(), peer });
    res.writeHead(200);
    res.end('shadow');
  });
}

const clusterOf = (name: string) => proxy.snapshot().clusters.get(name)!;
/** Whether active health checking has marked the cluster's one host failed. */
const failed = (name: string): boolean => { const c = clusterOf(name); return c.resilience.health.failedActiveHc(c.hosts[0]!.key); };
const checks = (name: string): { total: number; failures: number } => {
  const ck = clusterOf(name).resilience.checker!;
  return { total: ck.checksTotal, failures: ck.failuresTotal };
};
function stat(name: string): number {
  const m = new RegExp(`^${name.replace(/[.|]/g, '\\$&')}: (\\d+)$`, 'm').exec(proxy.stats.renderText());
  return m === null ? 0 : Number(m[1]);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-proxy-tls-health-'));
  ca = await makeCa(dir, TD);
  server = await ca.issue('shop', 'catalog');
  client = await ca.issue('shop', 'web');
  wrongId = `spiffe://${TD}/ns/shop/sa/not-catalog`;
  tlsUp = createSecureServer({
    cert: server.certPem, key: server.keyPem, ca: ca.bundlePem, requestCert: true, rejectUnauthorized: true,
    allowHTTP1: true, ALPNProtocols: ['h2', 'http/1.1'],
  }, handle);
  await new Promise<void>((r) => tlsUp.listen(0, '127.0.0.1', () => r()));
  tlsPort = (tlsUp.address() as AddressInfo).port;
  primary = await startUpstream('primary');

  const tls = (id: string, alpn?: string[]) => ({ transport_socket: upstreamTls(client, ca.bundlePem, [id], alpn === undefined ? {} : { alpn }) });
  const hc = (kind: Record<string, unknown>) => ({ health_checks: [{ timeout: '1s', interval: '0.05s', unhealthy_threshold: { value: 2 }, healthy_threshold: { value: 1 }, ...kind }] });
  const http = { http_health_check: { path: '/healthz', expected_statuses: [{ start: 200, end: 300 }] } };
  const grpc = { grpc_health_check: {} };
  const h2 = { http2_protocol_options: {} };
  const rc = routeConfig('r', [{ name: 'svc', domains: ['svc'], routes: [
    { match: { prefix: '/m1' }, route: { cluster: 'primary', request_mirror_policies: [{ cluster: 'shadow-h1' }] } },
    { match: { prefix: '/m2' }, route: { cluster: 'primary', request_mirror_policies: [{ cluster: 'shadow-alpn' }] } },
    { match: { prefix: '/m3' }, route: { cluster: 'primary', request_mirror_policies: [{ cluster: 'shadow-wrong' }] } },
  ] }]);
  proxy = await startProxy({
    adminAddr: '127.0.0.1:0',
    logLevel: 'silent',
    bootstrap: { static_resources: {
      listeners: [listener('out', { route_config: rc })],
      clusters: [
        staticCluster('primary', [primary.port]),
        staticCluster('http-good', [tlsPort], { ...tls(server.spiffeId), ...hc(http) }),
        staticCluster('http-wrong', [tlsPort], { ...tls(wrongId), ...hc(http) }),
        staticCluster('tcp-good', [tlsPort], { ...tls(server.spiffeId), ...hc({ tcp_health_check: {} }) }),
        staticCluster('tcp-wrong', [tlsPort], { ...tls(wrongId), ...hc({ tcp_health_check: {} }) }),
        staticCluster('grpc-good', [tlsPort], { ...tls(server.spiffeId), ...hc(grpc), ...h2 }),
        staticCluster('grpc-wrong', [tlsPort], { ...tls(wrongId), ...hc(grpc), ...h2 }),
        staticCluster('shadow-h1', [tlsPort], tls(server.spiffeId, ['http/1.1'])),
        // Offers h2 first: the server picks it, and the copy moves to the HTTP/2 session.
        staticCluster('shadow-alpn', [tlsPort], tls(server.spiffeId)),
        staticCluster('shadow-wrong', [tlsPort], tls(wrongId, ['http/1.1'])),
      ],
    } },
  });
  port = proxy.listenerPort('out')!;
});

after(async () => {
  await proxy?.close();
  await primary?.close();
  tlsUp?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('active health checks over the cluster TLS', () => {
  for (const kind of ['http', 'tcp', 'grpc']) {
    test(`${kind}: the expected SPIFFE ID passes, another fails`, async () => {
      await waitFor(`${kind}-wrong marked unhealthy`, () => failed(`${kind}-wrong`));
      await waitFor(`${kind}-good passed 3 checks`, () => checks(`${kind}-good`).total >= 3);
      assert.equal(failed(`${kind}-good`), false);
      assert.equal(checks(`${kind}-good`).failures, 0, `${kind}-good failed a check over mTLS`);
      assert.ok(stat(`cluster.${kind}-wrong.ssl.fail_verify_san`) >= 2, 'SAN mismatches counted');
      assert.ok(stat(`cluster.${kind}-good.ssl.handshake`) >= 3, 'handshakes counted');
    });
  }
});

describe('request mirrors to a TLS cluster', () => {
  test('ALPN http/1.1: the copy arrives over mTLS with our SVID and the body', async () => {
    const r = await call(port, '/m1/x', { method: 'POST', headers: { host: 'svc' }, body: 'payload-1' });
    assert.equal(r.status, 200);
    assert.equal(r.json<{ name: string }>().name, 'primary');
    const s = await waitFor('mirror got /m1/x', () => seen.find((x) => x.path === '/m1/x'));
    assert.equal(s.host, 'svc-shadow');
    assert.equal(s.version, '1.1');
    assert.equal(s.body, 'payload-1');
    assert.equal(s.peer, client.spiffeId);
  });

  test('the server picks h2 by ALPN: the copy (body included) moves to the HTTP/2 session', async () => {
    for (const i of [1, 2]) {
      const r = await call(port, `/m2/${i}`, { method: 'POST', headers: { host: 'svc' }, body: `payload-h2-${i}` });
      assert.equal(r.status, 200);
      const s = await waitFor(`mirror got /m2/${i}`, () => seen.find((x) => x.path === `/m2/${i}`));
      assert.equal(s.version, '2.0');
      assert.equal(s.body, `payload-h2-${i}`);
      assert.equal(s.peer, client.spiffeId);
    }
  });

  test('a mirror whose server has the wrong SPIFFE ID gets nothing; the primary still answers', async () => {
    const before = stat('cluster.shadow-wrong.ssl.fail_verify_san');
    const r = await call(port, '/m3/x', { headers: { host: 'svc' } });
    assert.equal(r.status, 200);
    await waitFor('SAN mismatch counted', () => stat('cluster.shadow-wrong.ssl.fail_verify_san') > before);
    assert.equal(seen.some((x) => x.path === '/m3/x'), false);
  });
});
