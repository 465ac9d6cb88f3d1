// grpc_response_status in the Istio-style metrics: real @grpc/grpc-js client and
// server through the proxy (h2c both ways). OK calls, a server error (NOT_FOUND in
// the trailers) and a local reply (no healthy upstream: UNAVAILABLE, trailers-only).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { listener, routeConfig, staticCluster } from '../fixtures/proxy/helpers.js';
import { H2_PROTOCOL_OPTIONS } from '../fixtures/proxy/h2.js';

interface Msg { text: string }
const ser = (v: Msg): Buffer => Buffer.from(JSON.stringify(v));
const de = (b: Buffer): Msg => JSON.parse(b.toString()) as Msg;
const method = (name: string): grpc.MethodDefinition<Msg, Msg> => ({
  path: `/weft.test.Echo/${name}`, requestStream: false, responseStream: false,
  requestSerialize: ser, requestDeserialize: de, responseSerialize: ser, responseDeserialize: de,
});
const SERVICE = { unary: method('Unary'), fail: method('Fail') } satisfies grpc.ServiceDefinition;
type Cb = (e: grpc.ServiceError | null, r?: Msg) => void;
type EchoClient = grpc.Client & { unary(m: Msg, cb: Cb): grpc.ClientUnaryCall; fail(m: Msg, cb: Cb): grpc.ClientUnaryCall };
const Client = grpc.makeGenericClientConstructor(SERVICE, 'Echo') as unknown as new (target: string, creds: grpc.ChannelCredentials) => EchoClient;

let server: grpc.Server;
let proxy: Proxy;
let client: EchoClient;
let noHost: EchoClient;

function callOf(c: EchoClient, which: 'unary' | 'fail'): Promise<number> {
  return new Promise((resolve) => { c[which]({ text: 'x' }, (e) => resolve(e === null ? 0 : e.code)); });
}

before(async () => {
  server = new grpc.Server();
  server.addService(SERVICE, {
    unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => cb(null, { text: call.request.text }),
    fail: (_call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => cb({ code: grpc.status.NOT_FOUND, details: 'nope' }),
  });
  const gport = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e !== null ? reject(e) : resolve(p))));
  const rc = routeConfig('r', [
    { name: 'echo', domains: ['echo.shop', 'echo.shop:*', '127.0.0.1:*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'outbound|9000||echo.shop' } }] },
    { name: 'gone', domains: ['gone.shop', 'gone.shop:*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'outbound|9000||gone.shop' } }] },
  ]);
  proxy = await startProxy({
    adminAddr: '127.0.0.1:0', logLevel: 'silent',
    node: { metadata: { WEFT_SERVICE: 'web', WEFT_NAMESPACE: 'shop', WEFT_WORKLOAD_NAME: 'web-1' } },
    bootstrap: {
      static_resources: {
        listeners: [{ ...listener('outbound', { route_config: rc }), traffic_direction: 'OUTBOUND' }],
        clusters: [
          staticCluster('outbound|9000||echo.shop', [gport], { typed_extension_protocol_options: H2_PROTOCOL_OPTIONS }),
          { ...staticCluster('outbound|9000||gone.shop', []), typed_extension_protocol_options: H2_PROTOCOL_OPTIONS },
        ],
      },
    },
  });
  const target = `127.0.0.1:${proxy.listenerPort('outbound')!}`;
  client = new Client(target, grpc.credentials.createInsecure());
  noHost = new (Client as unknown as new (t: string, c: grpc.ChannelCredentials, o: grpc.ChannelOptions) => EchoClient)(target, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'gone.shop' });
});

after(async () => {
  client?.close();
  noHost?.close();
  await proxy?.close();
  await new Promise<void>((r) => server.tryShutdown(() => r()));
});

function series(text: string, want: Record<string, string>): number[] {
  return text.split('\n').filter((l) => l.startsWith('weft_requests_total{') && Object.entries(want).every(([k, v]) => l.includes(`${k}="${v}"`))).map((l) => Number(l.slice(l.lastIndexOf(' ') + 1)));
}

describe('gRPC status in the metrics', () => {
  test('OK, NOT_FOUND from the server, UNAVAILABLE from a local reply', async () => {
    assert.equal(await callOf(client, 'unary'), grpc.status.OK);
    assert.equal(await callOf(client, 'unary'), grpc.status.OK);
    assert.equal(await callOf(client, 'fail'), grpc.status.NOT_FOUND);
    assert.equal(await callOf(noHost, 'unary'), grpc.status.UNAVAILABLE);
    const text = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
    assert.deepEqual(series(text, { destination_service: 'echo.shop', response_code: '200', grpc_response_status: '0' }), [2]);
    assert.deepEqual(series(text, { destination_service: 'echo.shop', response_code: '200', grpc_response_status: '5' }), [1]);
    assert.deepEqual(series(text, { destination_service: 'gone.shop', response_flags: 'UH', grpc_response_status: '14' }), [1]);
  });
});
