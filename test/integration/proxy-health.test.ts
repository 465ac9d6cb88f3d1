// Active health checks (HTTP, TCP, gRPC health protocol) against real upstreams: a
// host failing its checks leaves the load balancer and returns once it passes again.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createH2Server, type Http2Server } from 'node:http2';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { call, listener, routeConfig, staticCluster, startUpstream, waitFor, type Upstream } from '../fixtures/proxy/helpers.js';

const ups: Upstream[] = [];
let proxy: Proxy;
let port: number;
let sickHealthy = false;
let sick: Upstream; let fine: Upstream; let tcpHost: NetServer; let tcpPort: number;
const grpcServing = new Map<number, boolean>();
const h2s: Http2Server[] = [];

/** A minimal grpc.health.v1 server: SERVING (1) or NOT_SERVING (2) per a flag. */
async function grpcHealthServer(): Promise<number> {
  const s = createH2Server();
  let p = 0;
  s.on('stream', (stream, headers) => {
    if (headers[':path'] !== '/grpc.health.v1.Health/Check') { stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12' }, { endStream: true }); return; }
    stream.resume();
    stream.on('end', () => {
      const status = grpcServing.get(p) === true ? 1 : 2;
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(Buffer.from([0, 0, 0, 0, 2, 0x08, status]));
    });
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  p = (s.address() as AddressInfo).port;
  h2s.push(s);
  return p;
}

let g1 = 0; let g2 = 0;

before(async () => {
  const up = async (name: string, h?: Parameters<typeof startUpstream>[1]): Promise<Upstream> => { const u = await startUpstream(name, h); ups.push(u); return u; };
  const healthz = (isOk: () => boolean) => (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void => {
    if (req.url === '/healthz') { res.writeHead(isOk() ? 204 : 500); res.end(); return; }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ name: req.socket.localPort === sick.port ? 'sick' : 'fine' }));
  };
  sick = await up('sick', healthz(() => sickHealthy));
  fine = await up('fine', healthz(() => true));
  tcpHost = createNetServer((s) => s.destroy());
  await new Promise<void>((r) => tcpHost.listen(0, '127.0.0.1', () => r()));
  tcpPort = (tcpHost.address() as AddressInfo).port;
  g1 = await grpcHealthServer();
  g2 = await grpcHealthServer();
  grpcServing.set(g1, true);
  grpcServing.set(g2, false);
  const hc = (kind: Record<string, unknown>): Record<string, unknown> => ({
    health_checks: [{ timeout: '0.5s', interval: '0.03s', unhealthy_threshold: { value: 2 }, healthy_threshold: { value: 2 }, ...kind }],
  });
  proxy = await startProxy({
    adminAddr: '127.0.0.1:0',
    logLevel: 'silent',
    bootstrap: {
      static_resources: {
        listeners: [listener('out', { route_config: routeConfig('r', [{ name: 'svc', domains: ['svc'], routes: [
          { match: { prefix: '/prio' }, route: { cluster: 'prio-hc' } },
          { match: { prefix: '/' }, route: { cluster: 'http-hc' } },
        ] }]) })],
        clusters: [
          staticCluster('http-hc', [sick.port, fine.port], hc({ http_health_check: { path: '/healthz', expected_statuses: [{ start: 200, end: 300 }] } })),
          staticCluster('tcp-hc', [tcpPort, 1], hc({ tcp_health_check: {} })),
          staticCluster('grpc-hc', [g1, g2], { ...hc({ grpc_health_check: {} }), http2_protocol_options: {} }),
          {
            ...staticCluster('prio-hc', []),
            load_assignment: { cluster_name: 'prio-hc', endpoints: [
              { priority: 0, lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 1 } } } }] },
              { priority: 1, lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: fine.port } } } }] },
            ] },
            ...hc({ tcp_health_check: {} }),
          },
        ],
      },
    },
  });
  port = proxy.listenerPort('out')!;
});

after(async () => {
  await proxy?.close();
  await Promise.all(ups.map((u) => u.close()));
  tcpHost.close();
  for (const s of h2s) s.close();
});

const current = (cluster: string): number[] => proxy.snapshot().clusters.get(cluster)!.lb.current().map((h) => h.port);

describe('active health checks', () => {
  test('HTTP: a host failing /healthz leaves the LB; traffic goes to the healthy one', async () => {
    await waitFor('sick host marked unhealthy', () => current('http-hc').length === 1 && current('http-hc')[0] === fine.port);
    for (let i = 0; i < 10; i++) {
      const r = await call(port, '/x', { headers: { host: 'svc' } });
      assert.equal(r.json<{ name: string }>().name, 'fine');
    }
    const text = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
    assert.match(text, /weft_health_check_failures_total\{cluster_name="http-hc"\} [1-9]/);
  });

  test('HTTP: after healthy_threshold passing checks the host is back', async () => {
    sickHealthy = true;
    await waitFor('sick host back', () => current('http-hc').includes(sick.port));
    const names = new Set<string>();
    for (let i = 0; i < 6; i++) names.add((await call(port, '/x', { headers: { host: 'svc' } })).json<{ name: string }>().name);
    assert.deepEqual([...names].sort(), ['fine', 'sick']);
  });

  test('TCP: a port nobody listens on fails the connect check', async () => {
    await waitFor('closed port marked unhealthy', () => current('tcp-hc').length === 1 && current('tcp-hc')[0] === tcpPort);
  });

  test('priority failover: priority 0 failing its checks sends traffic to priority 1', async () => {
    await waitFor('priority 0 down', () => current('prio-hc').length === 1 && current('prio-hc')[0] === fine.port);
    const r = await call(port, '/prio', { headers: { host: 'svc' } });
    assert.equal(r.status, 200);
    assert.equal(r.json<{ name: string }>().name, 'fine');
  });

  test('gRPC health protocol: NOT_SERVING leaves the LB, SERVING comes back', async () => {
    await waitFor('NOT_SERVING host out', () => current('grpc-hc').length === 1 && current('grpc-hc')[0] === g1);
    grpcServing.set(g2, true);
    await waitFor('SERVING again', () => current('grpc-hc').length === 2);
  });
});
