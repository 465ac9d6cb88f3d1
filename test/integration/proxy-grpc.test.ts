// gRPC through the proxy: real @grpc/grpc-js servers and clients (a JSON-coded
// service, no .proto needed), unary / client / server / bidi streaming, status and
// trailers forwarded, grpc-timeout → upstream deadline, gRPC-shaped local replies.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:http';
import type { ClientHttp2Session } from 'node:http2';
import { startProxy, type AccessLogEntry, type Proxy } from '../../src/proxy/proxy.js';
import { listener, routeConfig, staticCluster, waitFor } from '../fixtures/proxy/helpers.js';
import { H2_PROTOCOL_OPTIONS, h2call, h2connect } from '../fixtures/proxy/h2.js';

interface Msg { text: string; n?: number }
const ser = (v: Msg): Buffer => Buffer.from(JSON.stringify(v));
const de = (b: Buffer): Msg => JSON.parse(b.toString()) as Msg;
const method = (name: string, requestStream: boolean, responseStream: boolean): grpc.MethodDefinition<Msg, Msg> => ({
  path: `/weft.test.Echo/${name}`, requestStream, responseStream,
  requestSerialize: ser, requestDeserialize: de, responseSerialize: ser, responseDeserialize: de,
});
const SERVICE = {
  unary: method('Unary', false, false),
  sum: method('Sum', true, false),
  count: method('Count', false, true),
  chat: method('Chat', true, true),
  hang: method('Hang', false, false),
  fail: method('Fail', false, false),
} satisfies grpc.ServiceDefinition;

type EchoClient = grpc.Client & {
  unary(m: Msg, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Msg) => void): grpc.ClientUnaryCall;
  sum(cb: (e: grpc.ServiceError | null, r?: Msg) => void): grpc.ClientWritableStream<Msg>;
  count(m: Msg): grpc.ClientReadableStream<Msg>;
  chat(): grpc.ClientDuplexStream<Msg, Msg>;
  hang(m: Msg, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Msg) => void): grpc.ClientUnaryCall;
  fail(m: Msg, cb: (e: grpc.ServiceError | null, r?: Msg) => void): grpc.ClientUnaryCall;
};
const Client = grpc.makeGenericClientConstructor(SERVICE, 'Echo') as unknown as new (target: string, creds: grpc.ChannelCredentials) => EchoClient;

let server: grpc.Server;
let proxy: Proxy;
let client: EchoClient;
let raw: ClientHttp2Session | undefined;
let hangCancelled = 0;
const log: AccessLogEntry[] = [];

function unary(c: EchoClient, m: Msg, md = new grpc.Metadata(), opts: grpc.CallOptions = {}): Promise<{ reply: Msg; trailers: grpc.Metadata | undefined }> {
  return new Promise((resolve, reject) => {
    let reply: Msg | undefined;
    let trailers: grpc.Metadata | undefined;
    const done = (): void => { if (reply !== undefined && trailers !== undefined) resolve({ reply, trailers }); };
    const call = c.unary(m, md, opts, (e, r) => { if (e !== null) reject(e); else { reply = r; done(); } });
    call.on('status', (s: grpc.StatusObject) => { trailers = s.metadata; done(); });
  });
}

function grpcError(p: Promise<unknown>): Promise<grpc.ServiceError> {
  return p.then(() => { throw new Error('expected a gRPC error'); }, (e: grpc.ServiceError) => e);
}

before(async () => {
  server = new grpc.Server();
  server.addService(SERVICE, {
    unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      const trailer = new grpc.Metadata();
      trailer.set('x-trailer', 'yes');
      const seen = call.metadata.get('x-client')[0];
      cb(null, { text: `echo:${call.request.text}:${String(seen ?? '')}` }, trailer);
    },
    sum: (call: grpc.ServerReadableStream<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      let total = 0;
      call.on('data', (m: Msg) => { total += m.n ?? 0; });
      call.on('end', () => cb(null, { text: 'sum', n: total }));
    },
    count: (call: grpc.ServerWritableStream<Msg, Msg>) => {
      for (let i = 0; i < (call.request.n ?? 0); i++) call.write({ text: call.request.text, n: i });
      call.end();
    },
    chat: (call: grpc.ServerDuplexStream<Msg, Msg>) => {
      call.on('data', (m: Msg) => call.write({ text: `re:${m.text}` }));
      call.on('end', () => call.end());
    },
    hang: (call: grpc.ServerUnaryCall<Msg, Msg>) => { call.on('cancelled', () => { hangCancelled++; }); },
    fail: (_call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      cb({ code: grpc.status.NOT_FOUND, details: 'no such thing: ünïcode' });
    },
  });
  const gport = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e !== null ? reject(e) : resolve(p))));
  const dead = createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', () => r()));
  const deadPort = (dead.address() as AddressInfo).port;
  await new Promise<void>((r) => dead.close(() => r()));

  const rc = routeConfig('r', [{
    name: 'all',
    domains: ['*'],
    routes: [
      { match: { prefix: '/weft.test.Echo/' }, route: { cluster: 'echo', timeout: '0s' } },
      { match: { prefix: '/dead.' }, route: { cluster: 'dead' } },
      { match: { prefix: '/nohost.' }, route: { cluster: 'nohost' } },
    ],
  }]);
  proxy = await startProxy({
    adminAddr: '127.0.0.1:0',
    logLevel: 'silent',
    onAccessLog: (e) => log.push(e),
    bootstrap: {
      static_resources: {
        listeners: [listener('in', { route_config: rc })],
        clusters: [
          staticCluster('echo', [gport], { typed_extension_protocol_options: H2_PROTOCOL_OPTIONS }),
          staticCluster('dead', [deadPort], { typed_extension_protocol_options: H2_PROTOCOL_OPTIONS }),
          { ...staticCluster('nohost', []), typed_extension_protocol_options: H2_PROTOCOL_OPTIONS },
        ],
      },
    },
  });
  client = new Client(`127.0.0.1:${proxy.listenerPort('in')!}`, grpc.credentials.createInsecure());
});

after(async () => {
  client.close();
  raw?.close();
  await proxy.close();
  await new Promise<void>((r) => server.tryShutdown(() => r()));
});

describe('gRPC through the proxy', () => {
  test('unary: request metadata in, reply and trailing metadata out', async () => {
    const md = new grpc.Metadata();
    md.set('x-client', 'c1');
    const { reply, trailers } = await unary(client, { text: 'hi' }, md);
    assert.equal(reply.text, 'echo:hi:c1');
    assert.deepEqual(trailers?.get('x-trailer'), ['yes']);
    const entry = log.find((e) => e.path === '/weft.test.Echo/Unary');
    assert.equal(entry?.status, 200);
    assert.equal(entry?.cluster, 'echo');
  });

  test('client streaming', async () => {
    const r = await new Promise<Msg>((resolve, reject) => {
      const call = client.sum((e, m) => (e !== null ? reject(e) : resolve(m!)));
      for (let i = 1; i <= 5; i++) call.write({ text: 'x', n: i });
      call.end();
    });
    assert.equal(r.n, 15);
  });

  test('server streaming', async () => {
    const got: Msg[] = [];
    await new Promise<void>((resolve, reject) => {
      const call = client.count({ text: 'tick', n: 25 });
      call.on('data', (m: Msg) => got.push(m));
      call.on('error', reject);
      call.on('end', () => resolve());
    });
    assert.equal(got.length, 25);
    assert.deepEqual(got.map((m) => m.n), Array.from({ length: 25 }, (_, i) => i));
  });

  test('bidi streaming: each reply arrives before the next message is sent', async () => {
    const call = client.chat();
    const replies: string[] = [];
    for (const text of ['a', 'b', 'c']) {
      call.write({ text });
      replies.push(await new Promise<string>((resolve, reject) => {
        call.once('data', (m: Msg) => resolve(m.text));
        call.once('error', reject);
      }));
    }
    call.end();
    await new Promise<void>((resolve) => { call.on('status', () => resolve()); call.resume(); });
    assert.deepEqual(replies, ['re:a', 're:b', 're:c']);
  });

  test('an application error status and message pass through (trailers)', async () => {
    const e = await grpcError(new Promise((resolve, reject) => client.fail({ text: 'x' }, (err, r) => (err !== null ? reject(err) : resolve(r)))));
    assert.equal(e.code, grpc.status.NOT_FOUND);
    assert.equal(e.details, 'no such thing: ünïcode');
  });
});

describe('deadlines and gRPC-shaped local replies', () => {
  test('a client deadline bounds the upstream call; the upstream sees the cancel', async () => {
    const before = hangCancelled;
    const e = await grpcError(new Promise((resolve, reject) => client.hang({ text: 'x' }, new grpc.Metadata(), { deadline: Date.now() + 300 }, (err, r) => (err !== null ? reject(err) : resolve(r)))));
    assert.equal(e.code, grpc.status.DEADLINE_EXCEEDED);
    await waitFor('upstream cancelled', () => hangCancelled > before);
  });

  test('grpc-timeout becomes the upstream timeout: HTTP 200, grpc-status 4 (UT)', async () => {
    raw ??= await h2connect(proxy.listenerPort('in')!);
    const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, 2]), Buffer.from('{}')]);
    const r = await h2call(raw, { ':method': 'POST', ':path': '/weft.test.Echo/Hang', ':authority': 'echo', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '200m' }, frame);
    assert.equal(r.status, 200);
    assert.equal(r.headers['grpc-status'], '4');
    assert.equal(r.headers['x-weft-response-flags'], 'UT');
    assert.equal(r.headers['content-type'], 'application/grpc');
  });

  test('no route → UNIMPLEMENTED, connect failure and no healthy host → UNAVAILABLE', async () => {
    const call = (path: string): Promise<grpc.ServiceError> => {
      const m = { ...SERVICE.unary, path };
      const C = grpc.makeGenericClientConstructor({ x: m }, 'X') as unknown as new (t: string, c: grpc.ChannelCredentials) => grpc.Client & { x(m: Msg, cb: (e: grpc.ServiceError | null) => void): void };
      const c = new C(`127.0.0.1:${proxy.listenerPort('in')!}`, grpc.credentials.createInsecure());
      return new Promise<grpc.ServiceError>((resolve, reject) => c.x({ text: '' }, (e) => { c.close(); if (e === null) reject(new Error('expected an error')); else resolve(e); }));
    };
    const nr = await call('/nope.Svc/M');
    assert.equal(nr.code, grpc.status.UNIMPLEMENTED);
    assert.equal(nr.details, 'route not found');
    const uf = await call('/dead.Svc/M');
    assert.equal(uf.code, grpc.status.UNAVAILABLE);
    const uh = await call('/nohost.Svc/M');
    assert.equal(uh.code, grpc.status.UNAVAILABLE);
    assert.equal(uh.details, 'no healthy upstream');
    const flags = log.filter((e) => e.path.startsWith('/nope.') || e.path.startsWith('/dead.') || e.path.startsWith('/nohost.')).map((e) => [e.flag, e.status]);
    assert.deepEqual(flags, [['NR', 200], ['UF', 200], ['UH', 200]]);
  });
});
