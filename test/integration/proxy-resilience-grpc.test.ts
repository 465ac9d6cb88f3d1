// Retries over an HTTP/2 upstream with gRPC conditions: a trailers-only
// grpc-status UNAVAILABLE is retried (on another host), DEADLINE_EXCEEDED is not
// unless listed; a gRPC body is replayed to the retry.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClientHttp2Session } from 'node:http2';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { listener, routeConfig, staticCluster } from '../fixtures/proxy/helpers.js';
import { H2_PROTOCOL_OPTIONS, h2call, h2connect, startH2Upstream, type H2Upstream } from '../fixtures/proxy/h2.js';

let unavailable: H2Upstream; let serving: H2Upstream; let deadline: H2Upstream;
let proxy: Proxy;
let client: ClientHttp2Session;

const trailersOnly = (code: number) => (stream: import('node:http2').ServerHttp2Stream): void => {
  stream.resume();
  stream.on('end', () => stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(code) }, { endStream: true }));
};

before(async () => {
  unavailable = await startH2Upstream('unavailable', trailersOnly(14));
  deadline = await startH2Upstream('deadline', trailersOnly(4));
  serving = await startH2Upstream('serving', (stream) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(Buffer.concat(chunks));
    });
  });
  const retry = { retry_on: 'unavailable,cancelled', num_retries: { value: 2 }, retry_back_off: { base_interval: '0.001s' } };
  const rc = routeConfig('r', [{ name: 'svc', domains: ['svc'], routes: [
    { match: { prefix: '/pkg.Svc/' }, route: { cluster: 'grpc', retry_policy: retry } },
    { match: { prefix: '/pkg.Deadline/' }, route: { cluster: 'deadline', retry_policy: retry } },
  ] }]);
  proxy = await startProxy({
    adminAddr: '127.0.0.1:0',
    logLevel: 'silent',
    bootstrap: { static_resources: {
      listeners: [listener('out', { route_config: rc })],
      clusters: [
        staticCluster('grpc', [unavailable.port, serving.port], { typed_extension_protocol_options: H2_PROTOCOL_OPTIONS }),
        staticCluster('deadline', [deadline.port], { typed_extension_protocol_options: H2_PROTOCOL_OPTIONS }),
      ],
    } },
  });
  client = await h2connect(proxy.listenerPort('out')!);
});

after(async () => {
  client?.close();
  await proxy?.close();
  await Promise.all([unavailable, serving, deadline].map((u) => u?.close()));
});

const grpcCall = (path: string, body: Buffer) => h2call(client, { ':method': 'POST', ':path': path, ':authority': 'svc', 'content-type': 'application/grpc', te: 'trailers' }, body);

describe('gRPC retries over HTTP/2', () => {
  test('UNAVAILABLE (trailers-only) is retried on the other host with the same message', async () => {
    const msg = Buffer.from([0, 0, 0, 0, 3, 1, 2, 3]);
    for (let i = 0; i < 6; i++) {
      const r = await grpcCall('/pkg.Svc/Call', msg);
      assert.equal(r.status, 200);
      assert.equal(r.trailers?.['grpc-status'], '0', `call ${i}`);
      assert.deepEqual(Buffer.from(r.text, 'latin1'), msg);
    }
    assert.ok(unavailable.seen.length >= 1, 'round robin sent some first attempts to the failing host');
  });

  test('DEADLINE_EXCEEDED is not in retry_on: one attempt, passed through', async () => {
    const before = deadline.seen.length;
    const r = await grpcCall('/pkg.Deadline/Call', Buffer.from([0, 0, 0, 0, 0]));
    assert.equal(r.headers['grpc-status'], '4');
    assert.equal(deadline.seen.length - before, 1);
  });
});
