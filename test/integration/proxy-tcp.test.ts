// TCP proxy listeners (envoy.filters.network.tcp_proxy): bytes both ways with
// half-close, weighted clusters, connect failure → close, idle_timeout.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { staticCluster, waitFor } from '../fixtures/proxy/helpers.js';

const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';

interface TcpUpstream { port: number; accepted: number; server: Server; sockets: Set<Socket> }

/** Echoes what it reads; after the client's FIN it writes `bye:<name>` and ends. */
async function startTcpUpstream(name: string): Promise<TcpUpstream> {
  const u: TcpUpstream = { port: 0, accepted: 0, server: createServer({ allowHalfOpen: true }), sockets: new Set() };
  u.server.on('connection', (s) => {
    u.accepted++;
    u.sockets.add(s);
    s.on('close', () => u.sockets.delete(s));
    s.on('error', () => {});
    s.on('data', (d: Buffer) => s.write(d));
    s.on('end', () => s.end(`bye:${name}`));
  });
  await new Promise<void>((r) => u.server.listen(0, '127.0.0.1', () => r()));
  u.port = (u.server.address() as AddressInfo).port;
  return u;
}

function tcpListener(name: string, typed: Record<string, unknown>): Record<string, unknown> {
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY, stat_prefix: name, ...typed } }] }],
  };
}

/** Connects, writes `send`, half-closes, and collects everything until the server closes. */
function exchange(port: number, send: string): Promise<{ data: string; hadError: boolean }> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let data = '';
    s.on('data', (d: Buffer) => { data += d.toString(); });
    s.on('error', () => {});
    s.on('close', (hadError) => resolve({ data, hadError }));
    s.write(send);
    s.end();
    s.setTimeout(10_000, () => s.destroy());
  });
}

let a: TcpUpstream;
let b: TcpUpstream;
let deadPort: number;
let proxy: Proxy;

before(async () => {
  a = await startTcpUpstream('a');
  b = await startTcpUpstream('b');
  const dead = createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', () => r()));
  deadPort = (dead.address() as AddressInfo).port;
  await new Promise<void>((r) => dead.close(() => r()));
  proxy = await startProxy({
    adminAddr: '127.0.0.1:0',
    logLevel: 'silent',
    bootstrap: {
      static_resources: {
        listeners: [
          tcpListener('tcp-a', { cluster: 'a' }),
          tcpListener('tcp-split', { weighted_clusters: { clusters: [{ name: 'a', weight: 1 }, { name: 'b', weight: 1 }] } }),
          tcpListener('tcp-dead', { cluster: 'dead' }),
          tcpListener('tcp-idle', { cluster: 'a', idle_timeout: '0.3s' }),
        ],
        clusters: [staticCluster('a', [a.port]), staticCluster('b', [b.port]), staticCluster('dead', [deadPort])],
      },
    },
  });
});

after(async () => {
  await proxy.close();
  for (const u of [a, b]) {
    for (const s of u.sockets) s.destroy();
    await new Promise<void>((r) => u.server.close(() => r()));
  }
});

test('bytes flow both ways and a half-close is passed on (the upstream still answers after our FIN)', async () => {
  const r = await exchange(proxy.listenerPort('tcp-a')!, 'hello over tcp');
  assert.equal(r.data, 'hello over tcpbye:a');
  assert.equal(r.hadError, false);
  await waitFor('upstream counters settle', () => proxy.stats.clusters.get('a')!.upstreamRqActive === 0);
});

test('a large payload streams through', async () => {
  const big = 'x'.repeat(512 * 1024);
  const r = await exchange(proxy.listenerPort('tcp-a')!, big);
  assert.equal(r.data.length, big.length + 'bye:a'.length);
});

test('weighted_clusters spread connections', async () => {
  const before = { a: a.accepted, b: b.accepted };
  const replies = await Promise.all(Array.from({ length: 24 }, () => exchange(proxy.listenerPort('tcp-split')!, 'x')));
  const names = new Set(replies.map((r) => r.data.slice(-1)));
  assert.equal(a.accepted - before.a + b.accepted - before.b, 24);
  assert.deepEqual([...names].sort(), ['a', 'b']);
});

test('an upstream connect failure closes the downstream connection and is counted', async () => {
  const r = await exchange(proxy.listenerPort('tcp-dead')!, 'anyone?');
  assert.equal(r.data, '');
  assert.ok(proxy.stats.listener('tcp-dead').tcpUpstreamFail >= 1);
  assert.ok(proxy.stats.clusters.get('dead')!.upstreamCxConnectFail >= 1);
});

test('idle_timeout closes a quiet connection', async () => {
  const s = connect({ port: proxy.listenerPort('tcp-idle')!, host: '127.0.0.1' });
  let closed = false;
  s.on('error', () => {});
  s.on('close', () => { closed = true; });
  let echoed = '';
  s.on('data', (d: Buffer) => { echoed += d.toString(); });
  s.write('ping');
  await waitFor('echo', () => echoed === 'ping');
  await waitFor('idle close', () => closed, 5000);
  assert.equal(proxy.stats.listener('tcp-idle').cxIdleTimeout, 1);
});
