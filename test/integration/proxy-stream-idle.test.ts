// The HCM's stream_idle_timeout through the proxy (issue 5 item 1): a listener-wide
// idle timeout (408, flag SI before the response starts; a reset after), a route's
// idle_timeout replacing it (a longer one, or 0 to switch it off), Envoy's 5 min
// default when the field is absent. Real node:http upstream that stalls or trickles.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { compileListener, STREAM_IDLE_TIMEOUT_DEFAULT_MS } from '../../src/proxy/config/compile-listener.js';
import { call, listener, routeConfig, staticCluster, startUpstream, type Upstream } from '../fixtures/proxy/helpers.js';

let up: Upstream;
let proxy: Proxy;
let port: number;

before(async () => {
  // /stall: nothing for 700 ms, then 200. /headers-then-stall: headers, then nothing for 700 ms.
  // /trickle: headers, then a chunk every 50 ms for 600 ms.
  up = await startUpstream('u', (req, res) => {
    if (req.url?.startsWith('/stall') === true) { const t = setTimeout(() => { res.writeHead(200); res.end('late'); }, 700); res.on('close', () => clearTimeout(t)); return; }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.flushHeaders();
    if (req.url?.startsWith('/headers-then-stall') === true) { const t = setTimeout(() => res.end('late'), 700); res.on('close', () => clearTimeout(t)); return; }
    let n = 0;
    const t = setInterval(() => {
      res.write('x');
      if (++n === 12) { clearInterval(t); res.end(); }
    }, 50);
    res.on('close', () => clearInterval(t));
  });
  proxy = await startProxy({
    adminAddr: '127.0.0.1:0',
    logLevel: 'silent',
    bootstrap: {
      static_resources: {
        listeners: [listener('out', { route_config: routeConfig('r', [{ name: 'v', domains: ['*'], routes: [
          // The route's own idle_timeout replaces the listener's: longer, or 0 (none).
          { match: { prefix: '/long/' }, route: { cluster: 'u', prefix_rewrite: '/', timeout: '5s', idle_timeout: '2s' } },
          { match: { prefix: '/off/' }, route: { cluster: 'u', prefix_rewrite: '/', timeout: '5s', idle_timeout: '0s' } },
          { match: { prefix: '/' }, route: { cluster: 'u', timeout: '5s' } },
        ] }]) }, 0, { stream_idle_timeout: '0.25s' })],
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

describe('HCM stream_idle_timeout', () => {
  test('no response within the listener-wide idle timeout: 408, flag SI', async () => {
    const t0 = Date.now();
    const r = await call(port, '/stall', { headers: { host: 'x' } });
    assert.equal(r.status, 408);
    assert.equal(r.headers['x-weft-response-flags'], 'SI');
    assert.ok(Date.now() - t0 < 650, `took ${Date.now() - t0} ms (the upstream answers at 700 ms)`);
  });

  test('response started, then idle: the stream is reset', async () => {
    await assert.rejects(call(port, '/headers-then-stall', { headers: { host: 'x' } }));
  });

  test('a response active every 50 ms outlives a 250 ms idle timeout', async () => {
    const r = await call(port, '/trickle', { headers: { host: 'x' } });
    assert.equal(r.status, 200);
    assert.equal(r.text, 'x'.repeat(12));
  });

  test("a route's longer idle_timeout replaces the listener's", async () => {
    const r = await call(port, '/long/stall', { headers: { host: 'x' } });
    assert.equal(r.status, 200);
    assert.equal(r.text, 'late');
  });

  test("a route's idle_timeout 0 switches the listener's off", async () => {
    const r = await call(port, '/off/stall', { headers: { host: 'x' } });
    assert.equal(r.status, 200);
    assert.equal(r.text, 'late');
  });
});

describe('stream_idle_timeout compilation', () => {
  const hcmListener = (extra: Record<string, unknown>): Record<string, unknown> =>
    listener('l', { route_config: routeConfig('r', [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'u' } }] }]) }, 0, extra);

  test("absent: Envoy's default of 5 minutes; 0s: none; a value: that value", () => {
    assert.equal(STREAM_IDLE_TIMEOUT_DEFAULT_MS, 300_000);
    assert.equal(compileListener(hcmListener({}))?.hcm?.streamIdleTimeoutMs, 300_000);
    assert.equal(compileListener(hcmListener({ stream_idle_timeout: '0s' }))?.hcm?.streamIdleTimeoutMs, 0);
    assert.equal(compileListener(hcmListener({ stream_idle_timeout: { seconds: 30, nanos: 500_000_000 } }))?.hcm?.streamIdleTimeoutMs, 30_500);
  });

  test('a negative duration is refused (NACK)', () => {
    assert.throws(() => compileListener(hcmListener({ stream_idle_timeout: { seconds: -1 } })), /stream_idle_timeout/);
  });
});
