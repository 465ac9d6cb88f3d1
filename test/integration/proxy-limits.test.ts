// Listener limits: slowloris (headers timeout → 408), header size and count (431),
// idle keep-alive timeout, and the per-listener connection limit
// (envoy.filters.network.connection_limit).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { call, hcm, routeConfig, staticCluster, startUpstream, waitFor, type Upstream } from '../fixtures/proxy/helpers.js';

const CONNECTION_LIMIT = 'type.googleapis.com/envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit';

let up: Upstream;
let proxy: Proxy;
const sockets: Socket[] = [];

function httpListener(name: string, hcmExtra: Record<string, unknown>, maxConnections?: number): Record<string, unknown> {
  const rc = routeConfig(`${name}-r`, [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'up' } }] }]);
  const filters: unknown[] = [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm({ route_config: rc }, hcmExtra) }];
  if (maxConnections !== undefined) filters.unshift({ name: 'envoy.filters.network.connection_limit', typed_config: { '@type': CONNECTION_LIMIT, stat_prefix: name, max_connections: maxConnections } });
  return { name, address: { socket_address: { address: '127.0.0.1', port_value: 0 } }, filter_chains: [{ filters }] };
}

/** A raw connection that records what it receives and whether it closed. */
function rawConnect(port: number): { socket: Socket; data: () => string; closed: () => boolean } {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  let data = '';
  let closed = false;
  socket.on('data', (d: Buffer) => { data += d.toString(); });
  socket.on('error', () => {});
  socket.on('close', () => { closed = true; });
  return { socket, data: () => data, closed: () => closed };
}

before(async () => {
  up = await startUpstream('up');
  proxy = await startProxy({
    adminAddr: '127.0.0.1:0',
    logLevel: 'silent',
    bootstrap: {
      static_resources: {
        listeners: [
          httpListener('slow', { request_headers_timeout: '0.3s' }),
          httpListener('small', { max_request_headers_kb: 1, common_http_protocol_options: { max_headers_count: 5 } }),
          httpListener('idle', { common_http_protocol_options: { idle_timeout: '0.3s' } }),
          httpListener('limited', {}, 2),
        ],
        clusters: [staticCluster('up', [up.port])],
      },
    },
  });
});

after(async () => {
  for (const s of sockets) s.destroy();
  await proxy.close();
  await up.close();
});

test('slowloris: a client trickling headers is cut off with 408 after request_headers_timeout', async () => {
  const c = rawConnect(proxy.listenerPort('slow')!);
  c.socket.write('GET / HTTP/1.1\r\nHost: x\r\n');
  let n = 0;
  const trickle = setInterval(() => { if (!c.closed() && n < 200) c.socket.write(`x-h${n++}: y\r\n`); }, 50);
  try {
    await waitFor('connection cut', () => c.closed(), 8000);
  } finally {
    clearInterval(trickle);
  }
  assert.match(c.data(), /^HTTP\/1\.1 408 /);
  assert.ok(n < 200, 'cut off long before the client gave up');
  // A normal request on that listener is fine.
  assert.equal((await call(proxy.listenerPort('slow')!, '/ok', { headers: { host: 'x' } })).status, 200);
});

test('request headers over max_request_headers_kb → 431', async () => {
  const c = rawConnect(proxy.listenerPort('small')!);
  c.socket.write(`GET / HTTP/1.1\r\nHost: x\r\nx-big: ${'a'.repeat(2048)}\r\n\r\n`);
  await waitFor('reply', () => c.data().includes('\r\n\r\n') || c.closed());
  assert.match(c.data(), /^HTTP\/1\.1 431 /);
});

test('more headers than max_headers_count → 431 (flag RQH)', async () => {
  const headers: Record<string, string> = { host: 'x' };
  for (let i = 0; i < 8; i++) headers[`x-h${i}`] = 'v';
  const r = await call(proxy.listenerPort('small')!, '/', { headers });
  assert.equal(r.status, 431);
  assert.equal(r.headers['x-weft-response-flags'], 'RQH');
  assert.equal((await call(proxy.listenerPort('small')!, '/', { headers: { host: 'x', 'x-one': '1' } })).status, 200);
});

test('an idle keep-alive connection is closed after idle_timeout', async () => {
  const c = rawConnect(proxy.listenerPort('idle')!);
  c.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('response', () => /^HTTP\/1\.1 200 /.test(c.data()));
  await waitFor('idle close', () => c.closed(), 5000);
});

test('connections over the listener limit are closed at once and counted', async () => {
  const port = proxy.listenerPort('limited')!;
  const before = proxy.stats.downstreamCxTotal;
  const first = rawConnect(port);
  const second = rawConnect(port);
  await waitFor('two accepted', () => proxy.stats.downstreamCxTotal - before === 2);
  const third = rawConnect(port);
  await waitFor('third closed', () => third.closed(), 5000);
  assert.equal(third.data(), '');
  assert.equal(proxy.stats.listener('limited').cxOverflow, 1);
  // The first two still work.
  first.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('first served', () => /^HTTP\/1\.1 200 /.test(first.data()));
  assert.equal(second.closed(), false);
  // Once one closes, a new connection is accepted again.
  first.socket.destroy();
  await waitFor('a new connection is served', () => call(port, '/', { headers: { host: 'x' } }).then((r) => r.status === 200, () => false));
});
