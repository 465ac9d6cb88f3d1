// WebSocket (HTTP/1.1 Upgrade) passthrough: routed like any request, then both
// sockets piped; upgrade_configs decides which upgrade types pass.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, type AccessLogEntry, type Proxy } from '../../src/proxy/proxy.js';
import { call, listener, routeConfig, staticCluster, startUpstream, waitFor, type Upstream } from '../fixtures/proxy/helpers.js';
import { startWsEcho, wsConnect, type WsClient, type WsEchoServer } from '../fixtures/proxy/ws.js';

let echo: WsEchoServer;
let plain: Upstream;
let proxy: Proxy;
let port: number;
let noWsPort: number;
const clients: WsClient[] = [];
const log: AccessLogEntry[] = [];

before(async () => {
  echo = await startWsEcho();
  plain = await startUpstream('plain');
  const rc = routeConfig('r', [{
    name: 'ws',
    domains: ['chat'],
    routes: [
      { match: { prefix: '/ws' }, route: { cluster: 'echo', prefix_rewrite: '/socket' } },
      { match: { prefix: '/' }, route: { cluster: 'plain' } },
    ],
  }]);
  proxy = await startProxy({
    adminAddr: '127.0.0.1:0',
    logLevel: 'silent',
    onAccessLog: (e) => log.push(e),
    bootstrap: {
      static_resources: {
        listeners: [
          listener('in', { route_config: rc }),
          listener('no-ws', { route_config: rc }, 0, { upgrade_configs: [{ upgrade_type: 'websocket', enabled: false }] }),
        ],
        clusters: [staticCluster('echo', [echo.port]), staticCluster('plain', [plain.port])],
      },
    },
  });
  port = proxy.listenerPort('in')!;
  noWsPort = proxy.listenerPort('no-ws')!;
});

after(async () => {
  for (const c of clients) c.close();
  await proxy.close();
  await echo.close();
  await plain.close();
});

test('a WebSocket is routed (with prefix rewrite), upgraded and echoes frames both ways', async () => {
  const ws = await wsConnect(port, '/ws/room?x=1', 'chat');
  clients.push(ws);
  assert.equal(ws.status, 101);
  assert.match(ws.headers, /sec-websocket-accept: /i);
  assert.match(ws.headers, /x-path: \/socket\/room\?x=1/);
  for (const m of ['one', 'two', 'x'.repeat(1000)]) {
    ws.send(m);
    assert.equal(await ws.next(), `echo:${m}`);
  }
  ws.close();
  // The access log entry is written when the upgraded connection ends.
  await waitFor('access log', () => log.find((e) => e.path === '/ws/room' && e.status === 101 && e.cluster === 'echo'));
});

test('ordinary requests on the same listener are unaffected', async () => {
  const r = await call(port, '/hello', { headers: { host: 'chat' } });
  assert.equal(r.status, 200);
  assert.equal(r.json<{ name: string }>().name, 'plain');
});

test('no route → 404 NR on the raw socket; unknown upgrade types and disabled websocket → 403', async () => {
  const nr = await wsConnect(port, '/ws', 'nobody');
  clients.push(nr);
  assert.equal(nr.status, 404);
  assert.match(nr.headers, /x-weft-response-flags: NR/);
  const other = await wsConnect(port, '/ws', 'chat', 'h2c');
  clients.push(other);
  assert.equal(other.status, 403);
  const disabled = await wsConnect(noWsPort, '/ws', 'chat');
  clients.push(disabled);
  assert.equal(disabled.status, 403);
});

test('closing the client closes the upstream side', async () => {
  const before = echo.upgrades;
  const ws = await wsConnect(port, '/ws/x', 'chat');
  clients.push(ws);
  ws.send('ping');
  assert.equal(await ws.next(), 'echo:ping');
  assert.equal(echo.upgrades, before + 1);
  ws.close();
  await waitFor('upstream request finished', () => proxy.stats.clusters.get('echo')!.upstreamRqActive === 0);
});
