// Istio-style labels over mTLS between two real proxies, certificates from Weft's CA:
// curl → proxy "web" (outbound, UpstreamTlsContext requiring catalog's SPIFFE ID)
// → proxy "catalog" (inbound TLS chain, client certificate required) → app.
// The principals and connection_security_policy each side reports, in /metrics
// and in the access log entry; and a plaintext client on a PERMISSIVE inbound is "none".
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProxy, type AccessLogEntry, type Proxy } from '../../src/proxy/proxy.js';
import { call, listener, startUpstream, staticCluster, type Upstream } from '../fixtures/proxy/helpers.js';
import { clientCertArgs, curl, downstreamTls, httpChain, inboundListener, makeCa, upstreamTls, type Issued, type TestCa } from './proxy-tls-helpers.js';

const TD = 'weft.test';
const SNI = 'outbound_.80_._.catalog.shop.svc.cluster.local';
const WEB_ID = `spiffe://${TD}/ns/shop/sa/web`;
const CATALOG_ID = `spiffe://${TD}/ns/shop/sa/catalog`;

let dir: string;
let ca: TestCa;
let server: Issued;
let client: Issued;
let app: Upstream;
let web: Proxy;
let catalog: Proxy;
const inboundLog: AccessLogEntry[] = [];

function series(text: string, name: string, want: Record<string, string>): number[] {
  const out: number[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(want).every(([k, v]) => line.includes(`${k}="${v}"`))) out.push(Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-metrics-mtls-'));
  ca = await makeCa(dir, TD);
  server = await ca.issue('shop', 'catalog');
  client = await ca.issue('shop', 'web');
  app = await startUpstream('catalog');
  catalog = await startProxy({
    logLevel: 'silent', adminAddr: '127.0.0.1:0', onAccessLog: (e) => inboundLog.push(e),
    node: { metadata: { WEFT_SERVICE: 'catalog', WEFT_NAMESPACE: 'shop', WEFT_WORKLOAD_NAME: 'catalog-1' } },
    bootstrap: {
      static_resources: {
        // PERMISSIVE: a TLS chain and a plaintext one.
        listeners: [inboundListener([
          httpChain('inbound|80|tls', 'app', { transport_protocol: 'tls' }, downstreamTls(server, ca.bundlePem)),
          httpChain('inbound|80|plain', 'app', { transport_protocol: 'raw_buffer' }),
        ])],
        clusters: [staticCluster('app', [app.port])],
      },
    },
  });
  web = await startProxy({
    logLevel: 'silent', adminAddr: '127.0.0.1:0',
    node: { metadata: { WEFT_SERVICE: 'web', WEFT_NAMESPACE: 'shop', WEFT_WORKLOAD_NAME: 'web-1' } },
    bootstrap: {
      static_resources: {
        listeners: [{ ...listener('outbound', { route_config: { name: 'out', virtual_hosts: [{ name: 'c', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'outbound|80||catalog.shop' } }] }] } }), traffic_direction: 'OUTBOUND' }],
        clusters: [staticCluster('outbound|80||catalog.shop', [catalog.listenerPort('inbound')!], { transport_socket: upstreamTls(client, ca.bundlePem, [CATALOG_ID], { sni: SNI }) })],
      },
    },
  });
});

after(async () => {
  await web?.close();
  await catalog?.close();
  await app?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('metric labels over mTLS', () => {
  test('proxy to proxy: both sides name both principals, mutual_tls', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await call(web.listenerPort('outbound')!, '/items', { headers: { host: 'catalog.shop' } })).status, 200);
    const src = await (await fetch(`${web.adminUrl}/metrics`)).text();
    assert.deepEqual(series(src, 'weft_requests_total', {
      reporter: 'source', source_workload: 'web-1', destination_service: 'catalog.shop', destination_principal: CATALOG_ID,
      connection_security_policy: 'mutual_tls', response_code: '200',
    }), [3]);
    const dst = await (await fetch(`${catalog.adminUrl}/metrics`)).text();
    assert.deepEqual(series(dst, 'weft_requests_total', {
      reporter: 'destination', source_principal: WEB_ID, source_namespace: 'shop', destination_principal: CATALOG_ID,
      destination_workload: 'catalog-1', connection_security_policy: 'mutual_tls', response_code: '200',
    }), [3]);
    const e = inboundLog.at(-1)!;
    assert.deepEqual({ inbound: e.inbound, source: e.sourcePrincipal, destination: e.destinationPrincipal }, { inbound: true, source: WEB_ID, destination: CATALOG_ID });
  });

  test('curl with a client certificate, and a plaintext client (PERMISSIVE)', async () => {
    const port = catalog.listenerPort('inbound')!;
    const r = await curl([...clientCertArgs(client), '--http1.1', `https://127.0.0.1:${port}/items`]);
    assert.equal(r.status, 200, r.stderr);
    assert.equal((await call(port, '/plain', { headers: { host: 'catalog.shop' } })).status, 200);
    const dst = await (await fetch(`${catalog.adminUrl}/metrics`)).text();
    assert.deepEqual(series(dst, 'weft_requests_total', { reporter: 'destination', source_principal: WEB_ID, connection_security_policy: 'mutual_tls' }), [4]);
    assert.deepEqual(series(dst, 'weft_requests_total', {
      reporter: 'destination', source_principal: 'unknown', source_namespace: 'unknown', destination_principal: 'unknown', connection_security_policy: 'none',
    }), [1]);
  });
});
