// Istio-style metrics and JSON access logs, through two real proxies:
// client → proxy "web" (outbound listener) → proxy "catalog" (inbound listener) → app.
// Checks the label values each side reports (source vs destination), a 503 UH,
// histograms and byte counts, TCP connection metrics, and the access log file the
// Mesh's settings (translated by the control plane's hcmTelemetry) make the proxy write.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { createServer as createTcpServer, connect, type Server as TcpServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { hcmTelemetry } from '../../src/control/xds/telemetry.js';
import type { Resource } from '../../src/api/types.js';
import type { MeshSpec } from '../../src/api/mesh/mesh.js';
import { flushAccessLogs } from '../../src/proxy/observability/sinks.js';
import { call, endpoint, listener, routeConfig, staticCluster, startUpstream, waitFor, type Upstream } from '../fixtures/proxy/helpers.js';

let app: Upstream;
let web: Proxy;
let catalog: Proxy;
let tcpEcho: TcpServer;
let dir: string;
let logPath: string;

function mesh(path: string): Resource<MeshSpec> {
  return {
    apiVersion: 'weft.dev/v1alpha1', kind: 'Mesh', metadata: { name: 'default' },
    spec: { trustDomain: 'cluster.local', mtls: { mode: 'PERMISSIVE' }, certificates: { workloadTTL: '24h' }, tracing: { sampling: 1 }, accessLog: { format: 'json', path }, outboundPolicy: 'ALLOW_ANY' },
  };
}

async function metrics(p: Proxy): Promise<string> {
  const r = await fetch(`${p.adminUrl}/metrics`);
  assert.equal(r.status, 200);
  return r.text();
}

/** The value of the one series of `name` whose labels include every `want` pair. */
function series(text: string, name: string, want: Record<string, string>): number[] {
  const out: number[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const labels = line.slice(name.length + 1, line.lastIndexOf('}'));
    if (Object.entries(want).every(([k, v]) => labels.includes(`${k}="${v}"`))) out.push(Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-metrics-'));
  logPath = join(dir, 'access.log');
  app = await startUpstream('catalog-app');
  tcpEcho = createTcpServer((s) => s.pipe(s));
  await new Promise<void>((r) => tcpEcho.listen(0, '127.0.0.1', () => r()));

  catalog = await startProxy({
    adminAddr: '127.0.0.1:0', logLevel: 'silent',
    node: { id: 'sidecar~127.0.0.1~catalog.shop', metadata: { WEFT_SERVICE: 'catalog', WEFT_NAMESPACE: 'shop', WEFT_WORKLOAD_NAME: 'catalog-1' } },
    bootstrap: {
      static_resources: {
        listeners: [{
          ...listener('inbound', { route_config: routeConfig('in', [{ name: 'in', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: `inbound|${app.port}||` } }] }]) }),
          traffic_direction: 'INBOUND',
        }],
        clusters: [staticCluster(`inbound|${app.port}||`, [app.port])],
      },
    },
  });
  const inboundPort = catalog.listenerPort('inbound')!;
  const ghost = { name: 'outbound|9090||ghost.shop', type: 'STATIC', load_assignment: { cluster_name: 'outbound|9090||ghost.shop', endpoints: [{ lb_endpoints: [endpoint(inboundPort, { health_status: 'UNHEALTHY' })] }] } };
  web = await startProxy({
    adminAddr: '127.0.0.1:0', logLevel: 'silent',
    node: { id: 'sidecar~127.0.0.1~web.shop', metadata: { WEFT_SERVICE: 'web', WEFT_NAMESPACE: 'shop', WEFT_WORKLOAD_NAME: 'web-1' } },
    bootstrap: {
      static_resources: {
        listeners: [
          {
            ...listener('outbound', {
              route_config: routeConfig('out', [
                { name: 'catalog', domains: ['catalog.shop'], routes: [{ name: 'catalog-all', match: { prefix: '/' }, route: { cluster: 'outbound|8080||catalog.shop' } }] },
                { name: 'ghost', domains: ['ghost.shop'], routes: [{ match: { prefix: '/' }, route: { cluster: 'outbound|9090||ghost.shop' } }] },
              ]),
            }, 0, hcmTelemetry(mesh(logPath), 'outbound')),
            traffic_direction: 'OUTBOUND',
          },
          // Access log into a directory that does not exist: lines are dropped and counted, requests unaffected.
          {
            ...listener('broken-log', { route_config: routeConfig('b', [{ name: 'b', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'outbound|8080||catalog.shop' } }] }]) },
              0, hcmTelemetry(mesh(join(dir, 'no-such-dir', 'access.log')), 'outbound')),
            traffic_direction: 'OUTBOUND',
          },
          {
            name: 'tcp-echo', traffic_direction: 'OUTBOUND',
            address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
            filter_chains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', stat_prefix: 'echo', cluster: 'outbound|7000||echo.shop' } }] }],
          },
        ],
        clusters: [
          staticCluster('outbound|8080||catalog.shop', [inboundPort]),
          ghost,
          staticCluster('outbound|7000||echo.shop', [(tcpEcho.address() as AddressInfo).port]),
        ],
      },
    },
  });
});

after(async () => {
  await web?.close();
  await catalog?.close();
  await app?.close();
  await new Promise<void>((r) => tcpEcho.close(() => r()));
  await rm(dir, { recursive: true, force: true });
});

describe('Istio-style metrics through two proxies', () => {
  const OK = 4;
  const BODY = 'x'.repeat(150);
  test('requests are counted with source and destination labels', async () => {
    const port = web.listenerPort('outbound')!;
    for (let i = 0; i < OK; i++) {
      const r = await call(port, '/items', { method: 'POST', headers: { host: 'catalog.shop', 'content-type': 'text/plain', 'user-agent': 'metrics-test/1' }, body: BODY });
      assert.equal(r.status, 200);
    }
    for (let i = 0; i < 2; i++) assert.equal((await call(port, '/x', { headers: { host: 'ghost.shop' } })).status, 503);

    const src = await metrics(web);
    const srcLabels = {
      reporter: 'source', source_workload: 'web-1', source_namespace: 'shop', source_principal: 'unknown',
      destination_service: 'catalog.shop', destination_namespace: 'shop', destination_workload: 'unknown',
      response_code: '200', response_flags: '-', connection_security_policy: 'unknown', grpc_response_status: '',
    };
    assert.deepEqual(series(src, 'weft_requests_total', srcLabels), [OK]);
    assert.deepEqual(series(src, 'weft_requests_total', { reporter: 'source', destination_service: 'ghost.shop', response_code: '503', response_flags: 'UH' }), [2]);
    assert.deepEqual(series(src, 'weft_request_duration_milliseconds_count', srcLabels), [OK]);
    assert.deepEqual(series(src, 'weft_request_duration_milliseconds_bucket', { ...srcLabels, le: '+Inf' }), [OK]);
    // Body bytes: 150 per request in; out, the app's JSON echo (same size every time).
    assert.deepEqual(series(src, 'weft_request_bytes_sum', srcLabels), [OK * BODY.length]);
    assert.deepEqual(series(src, 'weft_request_bytes_bucket', { ...srcLabels, le: '100' }), [0]);
    assert.deepEqual(series(src, 'weft_request_bytes_bucket', { ...srcLabels, le: '1000' }), [OK]);
    const respSum = series(src, 'weft_response_bytes_sum', srcLabels)[0]!;
    assert.ok(respSum > OK * BODY.length, `response bytes ${respSum}`);
    // The local reply's body counts too.
    assert.ok(series(src, 'weft_response_bytes_sum', { destination_service: 'ghost.shop' })[0]! > 0);
    // No paths in any label (bounded cardinality).
    assert.doesNotMatch(src, /\/items/);

    const dst = await metrics(catalog);
    const dstLabels = {
      reporter: 'destination', source_workload: 'unknown', source_namespace: 'unknown', source_principal: 'unknown',
      destination_service: 'catalog.shop', destination_workload: 'catalog-1', destination_namespace: 'shop',
      response_code: '200', response_flags: '-', connection_security_policy: 'none',
    };
    assert.deepEqual(series(dst, 'weft_requests_total', dstLabels), [OK]);
    assert.deepEqual(series(dst, 'weft_request_bytes_sum', dstLabels), [OK * BODY.length]);
    assert.deepEqual(series(dst, 'weft_response_bytes_sum', dstLabels), [respSum]);
    assert.deepEqual(series(dst, 'weft_requests_total', { reporter: 'source' }), []);
    // Envoy-style class totals are still there.
    assert.deepEqual(series(src, 'weft_downstream_rq_total', { response_code_class: '5xx', response_flags: 'UH' }), [2]);
  });

  test('TCP connections and bytes', async () => {
    const port = web.listenerPort('tcp-echo')!;
    const payload = Buffer.alloc(1000, 7);
    await new Promise<void>((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => s.write(payload));
      let got = 0;
      s.on('data', (c: Buffer) => { got += c.length; if (got >= payload.length) s.end(); });
      s.on('close', () => resolve());
      s.on('error', reject);
    });
    const want = { reporter: 'source', destination_service: 'echo.shop', source_workload: 'web-1' };
    const text = await waitFor('connection closed in metrics', async () => {
      const t = await metrics(web);
      return series(t, 'weft_tcp_connections_closed_total', want)[0] === 1 ? t : undefined;
    });
    assert.deepEqual(series(text, 'weft_tcp_connections_opened_total', want), [1]);
    assert.deepEqual(series(text, 'weft_tcp_received_bytes_total', want), [1000]);
    assert.deepEqual(series(text, 'weft_tcp_sent_bytes_total', want), [1000]);
  });

  test('access log: JSON lines in the file the Mesh names', async () => {
    await call(web.listenerPort('outbound')!, '/items?q=1', { headers: { host: 'catalog.shop', 'user-agent': 'log-test/2', 'x-request-id': 'rid-42', 'x-forwarded-for': '10.1.2.3', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } });
    await flushAccessLogs();
    const lines = (await readFile(logPath, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    // 4 POSTs + 2 UH + this one (the TCP connection is not an HTTP request).
    assert.equal(lines.length, OK + 3);
    const uh = lines.filter((l) => l.response_flags === 'UH');
    assert.equal(uh.length, 2);
    assert.equal(uh[0]!.status, 503);
    assert.equal(uh[0]!.upstream_cluster, 'outbound|9090||ghost.shop');
    const post = lines.find((l) => l.method === 'POST')!;
    assert.equal(post.bytes_received, BODY.length);
    assert.equal(typeof post.bytes_sent, 'number');
    assert.ok((post.bytes_sent as number) > 0);
    assert.equal(post.user_agent, 'metrics-test/1');
    const last = lines[lines.length - 1]!;
    assert.deepEqual(
      { method: last.method, authority: last.authority, path: last.path, protocol: last.protocol, status: last.status, response_flags: last.response_flags, route: last.route, upstream_cluster: last.upstream_cluster, request_id: last.request_id, user_agent: last.user_agent, x_forwarded_for: last.x_forwarded_for, trace_id: last.trace_id, direction: last.direction },
      { method: 'GET', authority: 'catalog.shop', path: '/items', protocol: 'HTTP/1.1', status: 200, response_flags: '-', route: 'catalog-all', upstream_cluster: 'outbound|8080||catalog.shop', request_id: 'rid-42', user_agent: 'log-test/2', x_forwarded_for: '10.1.2.3, 127.0.0.1', trace_id: '0af7651916cd43dd8448eb211c80319c', direction: 'outbound' },
    );
    assert.equal(last.upstream_host, `127.0.0.1:${catalog.listenerPort('inbound')}`);
    assert.ok(!Number.isNaN(Date.parse(String(last.time))));
    assert.equal(typeof last.duration_ms, 'number');
    // Unknown principals are null in JSON, as Envoy writes absent values.
    assert.equal(last.source_principal, null);
  });

  test('access log to a file that cannot be written: requests still served, lines counted as dropped', async () => {
    const port = web.listenerPort('broken-log')!;
    await waitFor('a dropped line', async () => {
      assert.equal((await call(port, '/x', { headers: { host: 'catalog.shop' } })).status, 200);
      return /^weft_access_log_dropped_total [1-9]/m.test(await metrics(web));
    });
  });

  test('access log: SIGUSR1 reopens the file (logrotate)', async () => {
    const rotated = `${logPath}.1`;
    await rename(logPath, rotated);
    process.kill(process.pid, 'SIGUSR1');
    // The reopened stream creates the file again.
    await waitFor('log file reopened', () => existsSync(logPath));
    await call(web.listenerPort('outbound')!, '/after-rotation', { headers: { host: 'catalog.shop' } });
    await flushAccessLogs();
    const fresh = (await readFile(logPath, 'utf8')).trim().split('\n');
    assert.equal(fresh.length, 1);
    assert.equal((JSON.parse(fresh[0]!) as { path: string }).path, '/after-rotation');
    assert.equal((await readFile(rotated, 'utf8')).trim().split('\n').length, OK + 3);
  });
});
