// Route stream timeouts through the proxy (issue 5 item 9, shipped with the locality
// work): route idle_timeout (flag SI) and max_stream_duration (flag DT), against a
// real node:http upstream that stalls or trickles its response.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { compileRouteConfig } from '../../src/proxy/config/compile-route.js';
import { call, listener, routeConfig, staticCluster, startUpstream, type Upstream } from '../fixtures/proxy/helpers.js';

let up: Upstream;
let proxy: Proxy;
let port: number;

before(async () => {
  // /stall: nothing for 1 s, then 200. /headers-then-stall: headers, then nothing for 1 s.
  // /trickle: headers, then a chunk every 50 ms for 600 ms.
  up = await startUpstream('u', (req, res) => {
    if (req.url?.startsWith('/stall') === true) { setTimeout(() => { res.writeHead(200); res.end('late'); }, 1000); return; }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.flushHeaders();
    if (req.url?.startsWith('/headers-then-stall') === true) { setTimeout(() => res.end('late'), 1000); return; }
    let n = 0;
    const t = setInterval(() => {
      res.write('x');
      if (++n === 12) { clearInterval(t); res.end(); }
    }, 50);
    res.on('close', () => clearInterval(t));
  });
  const idle = { timeout: '5s', idle_timeout: '0.25s' };
  const dur = { timeout: '5s', max_stream_duration: { max_stream_duration: '0.3s' } };
  proxy = await startProxy({
    adminAddr: '127.0.0.1:0',
    logLevel: 'silent',
    bootstrap: {
      static_resources: {
        listeners: [listener('out', { route_config: routeConfig('r', [{ name: 'v', domains: ['*'], routes: [
          { match: { prefix: '/idle/' }, route: { cluster: 'u', prefix_rewrite: '/', ...idle } },
          { match: { prefix: '/dur/' }, route: { cluster: 'u', prefix_rewrite: '/', ...dur } },
        ] }]) })],
        clusters: [staticCluster('u', [up.port])],
      },
    },
  });
  port = proxy.listenerPort('out')!;
});

after(async () => {
  await proxy?.close();
  await up?.close();
});

describe('route idle_timeout', () => {
  test('no response within the idle timeout: 408, flag SI', async () => {
    const t0 = Date.now();
    const r = await call(port, '/idle/stall', { headers: { host: 'x' } });
    assert.equal(r.status, 408);
    assert.equal(r.headers['x-weft-response-flags'], 'SI');
    assert.ok(Date.now() - t0 < 900, `took ${Date.now() - t0} ms`);
  });
  test('response started, then idle: the stream is reset', async () => {
    await assert.rejects(call(port, '/idle/headers-then-stall', { headers: { host: 'x' } }));
  });
  test('a response active every 50 ms outlives a 250 ms idle timeout', async () => {
    const r = await call(port, '/idle/trickle', { headers: { host: 'x' } });
    assert.equal(r.status, 200);
    assert.equal(r.text, 'x'.repeat(12));
  });
});

describe('route max_stream_duration', () => {
  test('no response within max_stream_duration: 408, flag DT', async () => {
    const r = await call(port, '/dur/stall', { headers: { host: 'x' } });
    assert.equal(r.status, 408);
    assert.equal(r.headers['x-weft-response-flags'], 'DT');
  });
  test('an active stream is still cut at max_stream_duration', async () => {
    const t0 = Date.now();
    await assert.rejects(call(port, '/dur/trickle', { headers: { host: 'x' } }));
    assert.ok(Date.now() - t0 < 550, `took ${Date.now() - t0} ms`);
  });
});

describe('route timeouts compile', () => {
  const rc = (action: Record<string, unknown>): unknown => ({ name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c', ...action } }] }] });
  test('grpc_timeout_header_max is read; grpc_timeout_header_offset is refused', () => {
    const c = compileRouteConfig(rc({ max_stream_duration: { grpc_timeout_header_max: '2s' } }));
    const a = c.virtualHosts[0]!.routes[0]!.action;
    assert.ok(a.kind === 'forward' && a.grpcTimeoutHeaderMaxMs === 2000);
    assert.throws(() => compileRouteConfig(rc({ max_stream_duration: { grpc_timeout_header_offset: '1s' } })), /grpc_timeout_header_offset/);
  });
});
