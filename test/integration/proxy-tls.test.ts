// mTLS on a real proxy (static bootstrap, real sockets, curl): STRICT and PERMISSIVE
// inbound listeners, refused clients (none, other CA, expired), h2 by ALPN, SNI chain
// selection, and proxy-to-proxy mTLS with the server's SPIFFE ID checked (UF on mismatch).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect as netConnect, createServer as createNetServer, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProxy, type AccessLogEntry, type Proxy } from '../../src/proxy/proxy.js';
import { call, listener, startUpstream, staticCluster, type Upstream } from '../fixtures/proxy/helpers.js';
import { startWsEcho, wsConnect, type WsEchoServer } from '../fixtures/proxy/ws.js';
import { clientCertArgs, curl, downstreamTls, httpChain, inboundListener, makeCa, upstreamTls, type Issued, type TestCa } from './proxy-tls-helpers.js';

const TD = 'weft.test';
const SNI = 'outbound_.80_._.catalog.shop.svc.cluster.local';

let dir: string;
let ca: TestCa;
let other: TestCa;
let app: Upstream;
let server: Issued;
let client: Issued;
let foreign: Issued;
let expired: Issued;
const proxies: Proxy[] = [];

async function proxyWith(listeners: unknown[], clusters: unknown[], onAccessLog?: (e: AccessLogEntry) => void): Promise<Proxy> {
  const p = await startProxy({ logLevel: 'silent', adminAddr: '127.0.0.1:0', bootstrap: { static_resources: { listeners, clusters } }, ...(onAccessLog ? { onAccessLog } : {}) });
  proxies.push(p);
  return p;
}

function statsText(p: Proxy): string {
  return p.stats.renderText();
}

function stat(p: Proxy, name: string): number {
  const m = new RegExp(`^${name.replace(/[.|]/g, '\\$&')}: (\\d+)$`, 'm').exec(statsText(p));
  return m === null ? 0 : Number(m[1]);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-proxy-tls-'));
  ca = await makeCa(dir, TD);
  other = await makeCa(dir, TD);
  app = await startUpstream('catalog');
  server = await ca.issue('shop', 'catalog');
  client = await ca.issue('shop', 'web');
  foreign = await other.issue('shop', 'web');
  // Issued "two days ago" for one hour: expired now.
  ca.setSkew(-2 * 86_400_000);
  expired = await ca.issue('shop', 'web', 3_600_000);
  ca.setSkew(0);
});

after(async () => {
  for (const p of proxies) await p.close();
  await app?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('STRICT inbound (only a TLS chain)', () => {
  let p: Proxy;
  let url: string;
  before(async () => {
    p = await proxyWith(
      [inboundListener([httpChain('inbound|80|tls', 'app', { transport_protocol: 'tls' }, downstreamTls(server, ca.bundlePem))])],
      [staticCluster('app', [app.port])],
    );
    url = `https://127.0.0.1:${p.listenerPort('inbound')}/items`;
  });

  test('a client certificate from the mesh CA: 200', async () => {
    const r = await curl([...clientCertArgs(client), '--http1.1', url]);
    assert.equal(r.status, 200, r.stderr);
    assert.equal(JSON.parse(r.body).name, 'catalog');
    assert.equal(r.version, '1.1');
    assert.ok(stat(p, 'listener.inbound.ssl.handshake') >= 1);
  });

  test('h2 through ALPN', async () => {
    const r = await curl([...clientCertArgs(client), '--http2', url]);
    assert.equal(r.status, 200, r.stderr);
    assert.equal(r.version, '2');
  });

  test('no client certificate: refused', async () => {
    const before = stat(p, 'listener.inbound.ssl.no_certificate');
    const r = await curl(['-k', url]);
    assert.equal(r.status, 0, `got a response: ${r.body}`);
    assert.notEqual(r.exit, 0);
    assert.equal(stat(p, 'listener.inbound.ssl.no_certificate'), before + 1);
  });

  test('a client certificate from another CA: refused', async () => {
    const before = stat(p, 'listener.inbound.ssl.fail_verify_error');
    const r = await curl([...clientCertArgs(foreign), url]);
    assert.equal(r.status, 0, `got a response: ${r.body}`);
    assert.equal(stat(p, 'listener.inbound.ssl.fail_verify_error'), before + 1);
  });

  test('an expired client certificate: refused', async () => {
    const before = stat(p, 'listener.inbound.ssl.fail_verify_error');
    const r = await curl([...clientCertArgs(expired), url]);
    assert.equal(r.status, 0, `got a response: ${r.body}`);
    assert.equal(stat(p, 'listener.inbound.ssl.fail_verify_error'), before + 1);
  });

  test('plaintext: closed, counted as no filter chain match', async () => {
    const before = stat(p, 'listener.inbound.no_filter_chain_match');
    await assert.rejects(call(p.listenerPort('inbound')!, '/items'));
    assert.equal(stat(p, 'listener.inbound.no_filter_chain_match'), before + 1);
  });
});

describe('the verified peer identity reaches HTTP filters (RBAC on connection.peerPrincipal)', () => {
  let p: Proxy;
  let intruder: Issued;
  let url: string;
  before(async () => {
    intruder = await ca.issue('shop', 'intruder');
    const chain = httpChain('inbound|80|tls', 'app', { transport_protocol: 'tls' }, downstreamTls(server, ca.bundlePem));
    const hcmCfg = (chain.filters as { typed_config: Record<string, unknown> }[])[0]!.typed_config;
    hcmCfg.http_filters = [
      {
        name: 'envoy.filters.http.rbac',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC',
          rules: { action: 'ALLOW', policies: { web: { permissions: [{ any: true }], principals: [{ authenticated: { principal_name: { exact: client.spiffeId } } }] } } },
        },
      },
      { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
    ];
    p = await proxyWith([inboundListener([chain])], [staticCluster('app', [app.port])]);
    url = `https://127.0.0.1:${p.listenerPort('inbound')}/items`;
  });

  for (const [label, flag, version] of [['HTTP/1.1', '--http1.1', '1.1'], ['h2', '--http2', '2']] as const) {
    test(`${label}: the allowed SPIFFE ID passes, another is denied`, async () => {
      const yes = await curl([...clientCertArgs(client), flag, url]);
      assert.equal(yes.status, 200, yes.stderr + yes.body);
      assert.equal(yes.version, version);
      const no = await curl([...clientCertArgs(intruder), flag, url]);
      assert.equal(no.status, 403, no.stderr + no.body);
    });
  }
});

describe('PERMISSIVE inbound (TLS and plaintext chains)', () => {
  let p: Proxy;
  before(async () => {
    p = await proxyWith(
      [inboundListener([
        httpChain('inbound|80|tls', 'app', { transport_protocol: 'tls', server_names: [SNI] }, downstreamTls(server, ca.bundlePem)),
        httpChain('inbound|http|plaintext', 'app', { transport_protocol: 'raw_buffer' }),
      ])],
      [staticCluster('app', [app.port])],
    );
  });

  test('plaintext is served', async () => {
    const r = await call(p.listenerPort('inbound')!, '/items');
    assert.equal(r.status, 200);
  });

  test('mTLS with the chain\'s SNI is served; h2 too', async () => {
    const port = p.listenerPort('inbound')!;
    const r = await curl([...clientCertArgs(client), '--connect-to', `${SNI}:443:127.0.0.1:${port}`, `https://${SNI}/items`]);
    assert.equal(r.status, 200, r.stderr);
    const h2 = await curl([...clientCertArgs(client), '--http2', '--connect-to', `${SNI}:443:127.0.0.1:${port}`, `https://${SNI}/items`]);
    assert.equal(h2.status, 200, h2.stderr);
    assert.equal(h2.version, '2');
  });

  test('TLS with an SNI no chain names: no chain matches', async () => {
    const before = stat(p, 'listener.inbound.no_filter_chain_match');
    const r = await curl([...clientCertArgs(client), '--connect-to', `other.example:443:127.0.0.1:${p.listenerPort('inbound')}`, 'https://other.example/items']);
    assert.equal(r.status, 0);
    assert.equal(stat(p, 'listener.inbound.no_filter_chain_match'), before + 1);
  });
});

describe('proxy A outbound → mTLS → proxy B inbound → app', () => {
  let a: Proxy;
  let b: Proxy;
  const logs: AccessLogEntry[] = [];
  before(async () => {
    b = await proxyWith(
      [inboundListener([httpChain('inbound|80|tls', 'app', { transport_protocol: 'tls', server_names: [SNI] }, downstreamTls(server, ca.bundlePem))])],
      [staticCluster('app', [app.port])],
    );
    const bPort = b.listenerPort('inbound')!;
    const route = (cluster: string): Record<string, unknown> => ({ match: { prefix: `/${cluster}/` }, route: { cluster, prefix_rewrite: '/' } });
    a = await proxyWith(
      [listener('outbound', { route_config: { name: 'out', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [route('h1'), route('h2'), route('wrong'), route('prefix'), route('foreign')] }] } })],
      [
        staticCluster('h1', [bPort], { transport_socket: upstreamTls(client, ca.bundlePem, [server.spiffeId], { sni: SNI, alpn: ['http/1.1'] }) }),
        staticCluster('h2', [bPort], { transport_socket: upstreamTls(client, ca.bundlePem, [server.spiffeId], { sni: SNI }) }),
        staticCluster('wrong', [bPort], { transport_socket: upstreamTls(client, ca.bundlePem, [`spiffe://${TD}/ns/shop/sa/not-catalog`], { sni: SNI }) }),
        staticCluster('prefix', [bPort], {
          transport_socket: {
            name: 'envoy.transport_sockets.tls',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
              sni: SNI,
              common_tls_context: {
                tls_certificates: [{ certificate_chain: { inline_string: client.certPem }, private_key: { inline_string: client.keyPem } }],
                validation_context: { trusted_ca: { inline_string: ca.bundlePem }, match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { prefix: `spiffe://${TD}/ns/shop/` } }] },
              },
            },
          },
        }),
        // The client certificate is from a CA proxy B does not trust.
        staticCluster('foreign', [bPort], { transport_socket: upstreamTls(foreign, ca.bundlePem, [server.spiffeId], { sni: SNI }) }),
      ],
      (e) => logs.push(e),
    );
  });

  test('HTTP/1.1 over mTLS: 200', async () => {
    const r = await call(a.listenerPort('outbound')!, '/h1/items', { headers: { host: 'catalog.shop' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json<{ url: string }>().url, '/items');
    assert.ok(stat(a, 'cluster.h1.ssl.handshake') >= 1);
  });

  test('ALPN h2 between the proxies: requests ride HTTP/2', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await call(a.listenerPort('outbound')!, '/h2/items', { headers: { host: 'catalog.shop' } });
      assert.equal(r.status, 200, r.text);
    }
    const c = a.snapshot().clusters.get('h2')!;
    assert.equal(c.pool.negotiatedH2('127.0.0.1', b.listenerPort('inbound')!), true);
    assert.equal(stat(a, 'cluster.h2.ssl.handshake'), 1, 'one TLS connection carries all requests');
  });

  test('a URI SAN prefix matcher accepts the server', async () => {
    const r = await call(a.listenerPort('outbound')!, '/prefix/items', { headers: { host: 'catalog.shop' } });
    assert.equal(r.status, 200, r.text);
  });

  test('the server presents another SPIFFE ID than expected: 503 UF', async () => {
    const r = await call(a.listenerPort('outbound')!, '/wrong/items', { headers: { host: 'catalog.shop' } });
    assert.equal(r.status, 503);
    assert.equal(r.headers['x-weft-response-flags'], 'UF');
    assert.equal(logs.at(-1)?.flag, 'UF');
    assert.ok(stat(a, 'cluster.wrong.ssl.fail_verify_san') >= 1);
    assert.ok(stat(a, 'cluster.wrong.upstream_cx_connect_fail') >= 1);
  });

  test('proxy B refuses a client certificate it does not trust: 503 UF at A', async () => {
    const r = await call(a.listenerPort('outbound')!, '/foreign/items', { headers: { host: 'catalog.shop' } });
    assert.equal(r.status, 503);
    assert.equal(r.headers['x-weft-response-flags'], 'UF');
  });

  test('admin /stats shows the ssl counters', async () => {
    const text = await (await fetch(`${a.adminUrl}/stats`)).text();
    assert.match(text, /^cluster\.h1\.ssl\.handshake: [1-9]/m);
    assert.match(text, /^cluster\.wrong\.ssl\.fail_verify_san: [1-9]/m);
    const prom = await (await fetch(`${b.adminUrl}/stats/prometheus`).catch(() => fetch(`${b.adminUrl}/metrics`))).text();
    assert.match(prom, /weft_ssl_handshake_total\{listener="inbound"\} [1-9]/);
  });
});

describe('TCP proxy over mTLS: proxy A tcp_proxy → TLS cluster → proxy B TLS chain → tcp_proxy → echo', () => {
  let echo: NetServer;
  let a: Proxy;
  const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
  const tcpChain = (name: string, cluster: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    name, ...extra, filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY, stat_prefix: name, cluster } }],
  });
  const roundTrip = (port: number, text: string): Promise<string> => new Promise((resolve, reject) => {
    const c = netConnect(port, '127.0.0.1', () => c.end(text));
    let got = '';
    c.on('data', (d: Buffer) => { got += d.toString(); });
    c.on('close', () => resolve(got));
    c.on('error', reject);
  });
  before(async () => {
    echo = createNetServer({ allowHalfOpen: true }, (s) => { s.pipe(s); });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    const echoPort = (echo.address() as { port: number }).port;
    const b = await proxyWith([inboundListener([tcpChain('inbound|9000|tls', 'echo', { filter_chain_match: { transport_protocol: 'tls' }, transport_socket: downstreamTls(server, ca.bundlePem, { alpn: [] }) })])], [staticCluster('echo', [echoPort])]);
    const bPort = b.listenerPort('inbound')!;
    a = await proxyWith(
      [
        { name: 'tcp-good', address: { socket_address: { address: '127.0.0.1', port_value: 0 } }, filter_chains: [tcpChain('good', 'b')] },
        { name: 'tcp-wrong', address: { socket_address: { address: '127.0.0.1', port_value: 0 } }, filter_chains: [tcpChain('wrong', 'b-wrong')] },
      ],
      [
        staticCluster('b', [bPort], { transport_socket: upstreamTls(client, ca.bundlePem, [server.spiffeId], { alpn: [] }) }),
        staticCluster('b-wrong', [bPort], { transport_socket: upstreamTls(client, ca.bundlePem, [`spiffe://${TD}/ns/x/sa/y`], { alpn: [] }) }),
      ],
    );
  });
  after(() => new Promise<void>((r) => echo.close(() => r())));

  test('bytes go through both ways', async () => {
    assert.equal(await roundTrip(a.listenerPort('tcp-good')!, 'hello over mTLS'), 'hello over mTLS');
  });

  test('a SAN mismatch closes the downstream connection, counted', async () => {
    assert.equal(await roundTrip(a.listenerPort('tcp-wrong')!, 'nope'), '');
    assert.ok(stat(a, 'cluster.b-wrong.ssl.fail_verify_san') >= 1);
    assert.ok(stat(a, 'listener.tcp-wrong.tcp_upstream_fail') >= 1);
  });
});

describe('WebSocket through proxy A → mTLS → proxy B', () => {
  let echo: WsEchoServer;
  let a: Proxy;
  before(async () => {
    echo = await startWsEcho();
    const b = await proxyWith([inboundListener([httpChain('inbound|80|tls', 'echo', { transport_protocol: 'tls' }, downstreamTls(server, ca.bundlePem))])], [staticCluster('echo', [echo.port])]);
    a = await proxyWith(
      [listener('out', { route_config: { name: 'o', virtual_hosts: [{ name: 'o', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'b' } }] }] } })],
      [staticCluster('b', [b.listenerPort('inbound')!], { transport_socket: upstreamTls(client, ca.bundlePem, [server.spiffeId]) })],
    );
  });
  after(() => echo.close());

  test('the Upgrade rides a verified TLS connection (HTTP/1.1 by ALPN)', async () => {
    const ws = await wsConnect(a.listenerPort('out')!, '/socket', 'chat');
    try {
      assert.equal(ws.status, 101);
      ws.send('over mtls');
      assert.equal(await ws.next(), 'echo:over mtls');
    } finally {
      ws.close();
    }
    assert.ok(stat(a, 'cluster.b.ssl.handshake') >= 1);
  });
});
