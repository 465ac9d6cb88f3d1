// HTTP/1.1 edge cases at the listener: request smuggling attempts are refused
// before they reach an upstream, and /drain stops accepting connections.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { call, listener, routeConfig, staticCluster, startUpstream, waitFor, type Upstream } from '../fixtures/proxy/helpers.js';

let up: Upstream;
let proxy: Proxy;
let port: number;

before(async () => {
  up = await startUpstream('up');
  proxy = await startProxy({
    adminAddr: '127.0.0.1:0',
    logLevel: 'silent',
    drainMs: 200,
    bootstrap: {
      static_resources: {
        listeners: [listener('out', { route_config: routeConfig('r', [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'up' } }] }]) })],
        clusters: [staticCluster('up', [up.port])],
      },
    },
  });
  port = proxy.listenerPort('out')!;
});

after(async () => {
  await proxy?.close();
  await up?.close();
});

/** Sends raw bytes, returns everything the proxy answers until it closes (or 2 s). */
function raw(bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let out = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => { out += d; });
    s.on('close', () => resolve(out));
    s.on('error', reject);
    s.setTimeout(2000, () => s.destroy());
    s.write(bytes);
  });
}

describe('request smuggling', () => {
  const cases: [string, string][] = [
    ['Content-Length and Transfer-Encoding together', 'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['two different Content-Length headers', 'POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde'],
    ['a bad chunk size', 'POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'],
    ['an obfuscated Transfer-Encoding', 'POST /d HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n'],
  ];
  for (const [name, bytes] of cases) {
    test(`${name} → 400, nothing forwarded`, async () => {
      const seen = up.seen.length;
      const answer = await raw(bytes);
      assert.match(answer, /^HTTP\/1\.1 400 /);
      assert.equal(up.seen.length, seen);
    });
  }

  test('a well-formed chunked request is forwarded once', async () => {
    const answer = await raw('POST /ok HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
    assert.match(answer, /^HTTP\/1\.1 200 /);
    assert.match(answer, /"body":"abc"/);
  });

  test('Expect: 100-continue is answered by the proxy, the body is forwarded', async () => {
    const answer = await raw('POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\nConnection: close\r\n\r\nxyz');
    assert.match(answer, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    assert.match(answer, /"body":"xyz"/);
    assert.equal(up.seen.at(-1)!.headers.expect, undefined);
  });
});

describe('drain', () => {
  test('POST /drain stops accepting and /ready turns 503', async () => {
    assert.equal((await call(port, '/', { headers: { host: 'x' } })).status, 200);
    assert.equal((await fetch(`${proxy.adminUrl}/drain`, { method: 'POST' })).status, 200);
    await waitFor('/ready 503', async () => (await fetch(`${proxy.adminUrl}/ready`)).status === 503);
    await waitFor('listener closed', async () => call(port, '/', { headers: { host: 'x' } }).then(() => false, () => true));
  });
});
