// Authorization through a real proxy (static bootstrap, real sockets, curl with client
// certificates from Weft's CA): an inbound mTLS listener with the three RBAC filters the
// control plane emits (AUDIT/LOG, DENY, ALLOW) and a matrix of principals × methods ×
// paths × headers → allow/deny; a TCP chain guarded by the network RBAC filter.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { startProxy, type AccessLogEntry, type Proxy } from '../../src/proxy/proxy.js';
import { setRbacDecisionSink, type RbacDecision } from '../../src/proxy/filters/rbac/decision-log.js';
import { startUpstream, staticCluster, waitFor, ROUTER_TYPE, HCM_TYPE, type Upstream } from '../fixtures/proxy/helpers.js';
import { clientCertArgs, curl, downstreamTls, inboundListener, makeCa, type Issued, type TestCa } from './proxy-tls-helpers.js';

const TD = 'weft.test';
const RBAC = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
const NET_RBAC = 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC';
const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';

let dir: string;
let ca: TestCa;
let app: Upstream;
let echo: Server;
let echoPort: number;
let proxy: Proxy;
let httpPort: number;
let tcpPort: number;
const certs: Record<string, Issued> = {};
const log: AccessLogEntry[] = [];
const decisions: RbacDecision[] = [];
let restoreSink: () => void;

const method = (m: string) => ({ header: { name: ':method', string_match: { exact: m } } });
const prefix = (p: string) => ({ url_path: { path: { prefix: p } } });
const exact = (p: string) => ({ url_path: { path: { exact: p } } });
const ns = (n: string) => ({ authenticated: { principal_name: { safe_regex: { google_re2: {}, regex: `spiffe://[^/]+/ns/${n}/sa/.*` } } } });
const sa = (n: string, s: string) => ({ authenticated: { principal_name: { exact: `spiffe://${TD}/ns/${n}/sa/${s}` } } });
const or = (...rules: unknown[]) => ({ or_rules: { rules } });
const and = (...rules: unknown[]) => ({ and_rules: { rules } });

/** The shape inbound.ts emits: filters per action, policies named ns.<ns>.<policy>[rule-<N>]. */
const httpFilters = [
  { name: 'envoy.filters.http.rbac.audit', typed_config: { '@type': RBAC, rules: { action: 'LOG', policies: {
    'ns.shop.audit-deletes[rule-0]': { permissions: [method('DELETE')], principals: [{ any: true }] },
  } } } },
  { name: 'envoy.filters.http.rbac.deny', typed_config: { '@type': RBAC, rules: { action: 'DENY', policies: {
    // Only the shop namespace may reach /admin/.
    'ns.shop.admin-lock[rule-0]': { permissions: [prefix('/admin/')], principals: [{ not_id: ns('shop') }] },
    // A kill switch header for anyone.
    'ns.shop.admin-lock[rule-1]': { permissions: [{ any: true }], principals: [{ header: { name: 'x-block', string_match: { exact: 'yes' } } }] },
    // Nobody from outside loopback (the test client is loopback: never matches).
    'ns.shop.edge[rule-0]': { permissions: [{ any: true }], principals: [{ not_id: { direct_remote_ip: { address_prefix: '127.0.0.0', prefix_len: { value: 8 } } } }] },
  } } } },
  { name: 'envoy.filters.http.rbac.allow', typed_config: { '@type': RBAC, rules: { action: 'ALLOW', policies: {
    // Readers: shop/web and the ops namespace may GET/HEAD the catalog.
    'ns.shop.readers[rule-0]': { permissions: [and(or(method('GET'), method('HEAD')), or(exact('/items'), prefix('/items/')))], principals: [{ or_ids: { ids: [sa('shop', 'web'), ns('ops')] } }] },
    // Writers: shop/admin may do anything, on any path (incl. /admin/ and DELETE).
    'ns.shop.writers[rule-0]': { permissions: [{ any: true }], principals: [sa('shop', 'admin')] },
    // Health checks from anyone with a mesh certificate.
    'ns.shop.health[rule-0]': { permissions: [exact('/healthz')], principals: [{ authenticated: {} }] },
  } } } },
  { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE } },
];

before(async () => {
  restoreSink = setRbacDecisionSink((d) => decisions.push(d));
  dir = await mkdtemp(join(tmpdir(), 'weft-proxy-authz-'));
  ca = await makeCa(dir, TD);
  app = await startUpstream('catalog');
  echo = createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  echoPort = (echo.address() as { port: number }).port;
  const server = await ca.issue('shop', 'catalog');
  for (const [n, s] of [['shop', 'web'], ['shop', 'admin'], ['ops', 'oncall'], ['other', 'intruder']] as const) certs[`${n}/${s}`] = await ca.issue(n, s);
  const route = { route_config: { name: 'inbound', virtual_hosts: [{ name: 'inbound', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] } };
  const httpListener = inboundListener([{
    name: 'inbound|80|tls',
    transport_socket: downstreamTls(server, ca.bundlePem),
    filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM_TYPE, stat_prefix: 'inbound|80', ...route, http_filters: httpFilters } }],
  }]);
  const tcpListener = { ...inboundListener([{
    name: 'inbound|9000|tls',
    transport_socket: downstreamTls(server, ca.bundlePem, { alpn: [] }),
    filters: [
      { name: 'envoy.filters.network.rbac.allow', typed_config: { '@type': NET_RBAC, stat_prefix: 'inbound|9000.allow', rules: { action: 'ALLOW', policies: { 'ns.shop.db[rule-0]': { permissions: [{ any: true }], principals: [ns('shop')] } } } } },
      { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY, stat_prefix: 'inbound|9000', cluster: 'echo' } },
    ],
  }]), name: 'inbound-tcp' };
  proxy = await startProxy({
    logLevel: 'silent',
    adminAddr: '127.0.0.1:0',
    onAccessLog: (e) => log.push(e),
    bootstrap: { static_resources: { listeners: [httpListener, tcpListener], clusters: [staticCluster('app', [app.port]), staticCluster('echo', [echoPort])] } },
  });
  httpPort = proxy.listenerPort('inbound')!;
  tcpPort = proxy.listenerPort('inbound-tcp')!;
});

after(async () => {
  restoreSink?.();
  await proxy?.close();
  await app?.close();
  await new Promise<void>((r) => (echo ? echo.close(() => r()) : r()));
  await rm(dir, { recursive: true, force: true });
});

async function request(who: string | undefined, m: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; flags: string }> {
  const args = who === undefined ? ['-k'] : clientCertArgs(certs[who]!);
  const hdrs = Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]);
  const m2 = m === 'HEAD' ? ['-I'] : ['-X', m];
  const r = await curl([...args, ...m2, ...hdrs, '-D', '-', `https://127.0.0.1:${httpPort}${path}`]);
  const flags = /x-weft-response-flags: (\S+)/i.exec(r.body)?.[1] ?? '';
  return { status: r.status, body: r.body, flags };
}

describe('HTTP RBAC: the authorization matrix through a real mTLS listener', () => {
  // [principal, method, path, extra headers, expected status]
  const matrix: [string, string, string, Record<string, string>, number][] = [
    ['shop/web', 'GET', '/items', {}, 200],
    ['shop/web', 'HEAD', '/items/42', {}, 200],
    ['shop/web', 'GET', '/items?limit=3', {}, 200],
    ['shop/web', 'POST', '/items', {}, 403],
    ['shop/web', 'GET', '/orders', {}, 403],
    ['shop/web', 'GET', '/admin/stats', {}, 403],
    ['shop/web', 'GET', '/items', { 'x-block': 'yes' }, 403],
    ['shop/admin', 'POST', '/items', {}, 200],
    ['shop/admin', 'DELETE', '/items/1', {}, 200],
    ['shop/admin', 'GET', '/admin/stats', {}, 200],
    ['shop/admin', 'GET', '/admin/stats', { 'x-block': 'yes' }, 403],
    ['ops/oncall', 'GET', '/items/7', {}, 200],
    ['ops/oncall', 'PUT', '/items/7', {}, 403],
    ['ops/oncall', 'GET', '/admin/stats', {}, 403],
    ['other/intruder', 'GET', '/items', {}, 403],
    ['other/intruder', 'GET', '/healthz', {}, 200],
    ['other/intruder', 'GET', '/admin/x', {}, 403],
  ];
  for (const [who, m, path, h, want] of matrix) {
    const extra = Object.keys(h).length > 0 ? ` ${JSON.stringify(h)}` : '';
    test(`${who} ${m} ${path}${extra} → ${want}`, async () => {
      const before = app.seen.length;
      const r = await request(who, m, path, h);
      assert.equal(r.status, want, r.body);
      if (want === 403) {
        assert.equal(r.flags, 'RBAC');
        if (m !== 'HEAD') assert.match(r.body, /RBAC: access denied/);
        assert.equal(app.seen.length, before, 'a denied request never reaches the app');
      } else {
        assert.equal(app.seen.length, before + 1);
      }
    });
  }

  test('a client without a certificate is refused by the TLS layer (require_client_certificate)', async () => {
    const r = await curl(['-k', `https://127.0.0.1:${httpPort}/healthz`]);
    assert.equal(r.status, 0);
    assert.notEqual(r.exit, 0);
  });

  test('denials name the deciding policy in the log line; the access log carries flag RBAC', async () => {
    decisions.length = 0;
    await request('ops/oncall', 'GET', '/admin/stats');
    await request('other/intruder', 'POST', '/items');
    assert.deepEqual(decisions.map((d) => [d.action, d.policy, d.principal]), [
      ['DENY', 'ns.shop.admin-lock[rule-0]', `spiffe://${TD}/ns/ops/sa/oncall`],
      ['ALLOW', undefined, `spiffe://${TD}/ns/other/sa/intruder`],
    ]);
    const e = await waitFor('access log', () => log.find((x) => x.path.startsWith('/admin/stats') && x.status === 403));
    assert.equal(e.flag, 'RBAC');
  });

  test('AUDIT (LOG) only logs: the DELETE goes through and is logged with its policy', async () => {
    decisions.length = 0;
    const r = await request('shop/admin', 'DELETE', '/items/9');
    assert.equal(r.status, 200);
    assert.deepEqual(decisions.map((d) => [d.decision, d.policy]), [['logged', 'ns.shop.audit-deletes[rule-0]']]);
  });

  test('gRPC requests are refused with PERMISSION_DENIED (7) in a trailers-only reply', async () => {
    const r = await request('other/intruder', 'POST', '/catalog.v1.Catalog/List', { 'content-type': 'application/grpc', te: 'trailers' });
    assert.equal(r.status, 200);
    assert.match(r.body, /grpc-status: 7/i);
  });
});

describe('network RBAC on a TCP chain', () => {
  function tcpRoundTrip(who: string): Promise<string> {
    const c = certs[who]!;
    return new Promise((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port: tcpPort, cert: c.certPem, key: c.keyPem, rejectUnauthorized: false }, () => s.write('ping'));
      let got = '';
      s.on('data', (d: Buffer) => { got += d.toString(); if (got === 'ping') s.end(); });
      s.on('error', () => undefined);
      s.on('close', () => resolve(got));
      s.setTimeout(5000, () => s.destroy());
    });
  }

  test('a principal the policy allows gets through to the upstream', async () => {
    assert.equal(await tcpRoundTrip('shop/web'), 'ping');
  });

  test('another namespace is closed without a byte; the log names the filter decision', async () => {
    decisions.length = 0;
    assert.equal(await tcpRoundTrip('other/intruder'), '');
    assert.deepEqual(decisions.map((d) => [d.filter, d.decision, d.action, d.principal]), [['network', 'denied', 'ALLOW', `spiffe://${TD}/ns/other/sa/intruder`]]);
  });
});
