import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { grpcBootstrap } from '../../src/control/xds/grpc-bootstrap.js';
import { startXdsServer, type XdsServerHandle } from '../../src/control/xds/xds-server.js';
import type { ConfigStore } from '../../src/store/types.js';
import { eventually, httpRoute, service, silent, tempStore, workload } from './xds-helpers.js';

/**
 * Real proxyless gRPC clients (@grpc/grpc-js-xds, in a child process because its
 * bootstrap is read once per process) against Weft's xDS server, calling real
 * gRPC servers picked by the routes in the store.
 */

const HERE = dirname(fileURLToPath(import.meta.url));
function repoRoot(): string {
  let dir = HERE;
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}
const PROTO = join(repoRoot(), 'test/fixtures/echo.proto');
const TARGET = 'xds:///echo.default:8000';

let store: ConfigStore;
let cleanup: () => Promise<void>;
let xds: XdsServerHandle;
const backends: grpc.Server[] = [];
let child: ChildProcess | undefined;
let serverChild: ChildProcess | undefined;
const replies = new Map<number, (r: CallResult) => void>();
let seq = 0;

interface CallResult {
  counts: Record<string, number>;
  errors: Record<string, number>;
}

async function startBackend(name: string): Promise<number> {
  const def = protoLoader.loadSync(PROTO, { keepCase: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { weft: { test: { Echo: grpc.ServiceClientConstructor } } };
  const server = new grpc.Server();
  server.addService(pkg.weft.test.Echo.service, {
    Call: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<{ backend: string }>) => cb(null, { backend: name }),
  });
  backends.push(server);
  return new Promise((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))));
}

function calls(n: number, metadata: Record<string, string> = {}, concurrency = 8): Promise<CallResult> {
  const id = ++seq;
  return new Promise((resolve, reject) => {
    if (!child?.stdin) return reject(new Error('client process not running'));
    replies.set(id, resolve);
    child.stdin.write(`${JSON.stringify({ id, n, metadata, concurrency, deadlineMs: 3000 })}\n`);
  });
}

function routeSpec(defaultBackends: { name: string; weight: number }[]): Record<string, unknown> {
  return {
    parentRefs: [{ group: '', kind: 'Service', name: 'echo', port: 8000 }],
    rules: [
      {
        matches: [{ path: { type: 'PathPrefix', value: '/' }, headers: [{ type: 'Exact', name: 'x-tag', value: 'canary' }] }],
        backendRefs: [{ group: '', kind: 'Service', name: 'echo-b', port: 8000, weight: 1 }],
      },
      {
        matches: [{ path: { type: 'PathPrefix', value: '/' } }],
        backendRefs: defaultBackends.map((b) => ({ group: '', kind: 'Service', name: b.name, port: 8000, weight: b.weight })),
      },
    ],
  };
}

before(async () => {
  ({ store, cleanup } = await tempStore());
  const portA = await startBackend('a');
  const portB = await startBackend('b');
  await store.putMany([
    service('echo', [{ port: 8000, protocol: 'grpc' }]),
    service('echo-a', [{ port: 8000, targetPort: portA, protocol: 'grpc' }], { app: 'echo-a' }),
    service('echo-b', [{ port: 8000, targetPort: portB, protocol: 'grpc' }], { app: 'echo-b' }),
    workload('echo-a-1', '127.0.0.1', { app: 'echo-a' }, [portA]),
    workload('echo-b-1', '127.0.0.1', { app: 'echo-b' }, [portB]),
    httpRoute('echo', routeSpec([{ name: 'echo-a', weight: 80 }, { name: 'echo-b', weight: 20 }])),
  ]);
  xds = await startXdsServer({ store, addr: '127.0.0.1:0', log: silent, debounceMs: 20 });
  const bootstrap = grpcBootstrap({ service: 'tester', namespace: 'default', xdsAddress: xds.address, nodeId: 'grpc-tester' });
  child = spawn(process.execPath, [join(HERE, 'xds-grpc-client.js'), PROTO, TARGET], {
    env: { ...process.env, GRPC_XDS_BOOTSTRAP_CONFIG: JSON.stringify(bootstrap), GRPC_XDS_BOOTSTRAP: '' },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const rl = createInterface({ input: child.stdout ?? process.stdin });
  rl.on('line', (line) => {
    const r = JSON.parse(line) as CallResult & { id: number };
    replies.get(r.id)?.(r);
    replies.delete(r.id);
  });
  // Ready when a call succeeds: the client has LDS, RDS, CDS and EDS.
  await eventually(async () => Object.keys((await calls(1)).counts).length > 0, 'first successful xDS call', 15_000, 50);
});

async function stop(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.stdin?.end();
  const t = setTimeout(() => p.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(t);
}

/** A free port: XdsServer needs a concrete one (its Listener name carries it). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

after(async () => {
  await Promise.all([stop(child), stop(serverChild)]);
  await Promise.all(backends.map((s) => new Promise<void>((r) => s.tryShutdown(() => r()))));
  await xds?.close();
  await cleanup?.();
});

test('(a) weighted 80/20 split over 1,000 calls is within ±5%', async () => {
  const r = await calls(1000);
  assert.deepEqual(r.errors, {});
  const a = r.counts.a ?? 0;
  const b = r.counts.b ?? 0;
  assert.equal(a + b, 1000);
  const share = a / 1000;
  console.log(`# split: a=${a} b=${b} (${(share * 100).toFixed(1)}% / ${(100 - share * 100).toFixed(1)}%)`);
  assert.ok(Math.abs(share - 0.8) <= 0.05, `a got ${(share * 100).toFixed(1)}%`);
  // The client accepted everything it was sent: ACKs for all four types, no NACK.
  const st = xds.ads.listClients().find((c) => c.nodeId === 'grpc-tester');
  assert.ok(st);
  for (const t of ['LDS', 'RDS', 'CDS', 'EDS'] as const) {
    assert.ok(st.types[t]?.ackedVersion, `${t} ACKed`);
    assert.equal(st.types[t]?.ackedVersion, st.types[t]?.sentVersion, `${t} ACKed what was sent`);
    assert.equal(st.types[t]?.lastNack, undefined, `${t} not NACKed`);
  }
});

test('(b) a header match sends the tagged calls to the right backend', async () => {
  const tagged = await calls(100, { 'x-tag': 'canary' });
  assert.deepEqual(tagged.errors, {});
  assert.deepEqual(tagged.counts, { b: 100 });
  const other = await calls(100, { 'x-tag': 'other' });
  assert.ok((other.counts.a ?? 0) > 50, 'untagged calls follow the split');
});

test('(c) changing the HTTPRoute changes live routing within a second, same client', async () => {
  const t0 = Date.now();
  await store.put(httpRoute('echo', routeSpec([{ name: 'echo-b', weight: 1 }])));
  let elapsed = 0;
  await eventually(
    async () => {
      const r = await calls(20, {}, 4);
      if ((r.counts.b ?? 0) === 20) {
        elapsed = Date.now() - t0;
        return true;
      }
      return false;
    },
    'routing to follow the new HTTPRoute',
    1000,
    5,
  );
  console.log(`# route change took effect in ${elapsed} ms`);
  assert.ok(elapsed < 1000);
  // And back, to be sure it was the route and not chance.
  await store.put(httpRoute('echo', routeSpec([{ name: 'echo-a', weight: 1 }])));
  await eventually(async () => ((await calls(20, {}, 4)).counts.a ?? 0) === 20, 'routing back to a', 1000, 5);
});

test('(d) an XdsServer gets its inbound Listener (A36), registers its workload, and takes routed calls', async () => {
  const port = await freePort();
  await store.put(service('echo-x', [{ port: 8000, targetPort: port, protocol: 'grpc' }]));
  const bootstrap = grpcBootstrap({ service: 'echo-x', namespace: 'default', server: true, xdsAddress: xds.address, nodeId: 'echo-x-server', workloadAddress: '127.0.0.1', workloadPorts: [port] });
  serverChild = spawn(process.execPath, [join(HERE, 'xds-grpc-server.js'), PROTO, `127.0.0.1:${port}`, 'x'], {
    env: { ...process.env, GRPC_XDS_BOOTSTRAP_CONFIG: JSON.stringify(bootstrap), GRPC_XDS_BOOTSTRAP: '' },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const serving = new Promise<void>((resolve, reject) => {
    const rl = createInterface({ input: serverChild?.stdout ?? process.stdin });
    rl.on('line', (l) => l === 'serving' && resolve());
    serverChild?.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  await Promise.race([serving, new Promise((_, reject) => setTimeout(() => reject(new Error('XdsServer did not start serving within 10 s')), 10_000).unref())]);
  const st = await eventually(() => xds.ads.listClients().find((c) => c.nodeId === 'echo-x-server' && c.types.LDS?.ackedVersion), 'server LDS ACK');
  assert.equal(st.types.LDS?.lastNack, undefined);
  assert.match(st.workload ?? '', /^default\/echo-x-/);
  // Route every call to the Service the server registered itself under.
  await store.put(httpRoute('echo', routeSpec([{ name: 'echo-x', weight: 1 }])));
  await eventually(async () => ((await calls(20, {}, 4)).counts.x ?? 0) === 20, 'calls reaching the XdsServer through its registered workload', 3000, 10);
});
