import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Resource } from '../../src/api/types.js';
import { grpcBootstrap } from '../../src/control/xds/grpc-bootstrap.js';
import { startXdsServer, type XdsServerHandle } from '../../src/control/xds/xds-server.js';
import type { ConfigStore } from '../../src/store/types.js';
import { eventually, service, silent, tempStore, workload } from './xds-helpers.js';

/**
 * BackendPolicy translated by Weft and run by REAL proxyless gRPC clients
 * (@grpc/grpc-js-xds 1.14, child process): retries, fault injection, ring hash
 * with a header hash policy, outlier detection. In 1.14 retry
 * (GRPC_XDS_EXPERIMENTAL_ENABLE_RETRY), fault injection
 * (GRPC_XDS_EXPERIMENTAL_FAULT_INJECTION), ring hash
 * (GRPC_XDS_EXPERIMENTAL_ENABLE_RING_HASH) and outlier detection
 * (GRPC_EXPERIMENTAL_ENABLE_OUTLIER_DETECTION) are all on by default
 * (build/src/environment.js); the child's env sets them anyway, explicitly.
 */

const HERE = dirname(fileURLToPath(import.meta.url));
function repoRoot(): string {
  let dir = HERE;
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}
const PROTO = join(repoRoot(), 'test/fixtures/echo.proto');

let store: ConfigStore;
let cleanup: () => Promise<void>;
let xds: XdsServerHandle;
const backends: grpc.Server[] = [];
let child: ChildProcess | undefined;
const replies = new Map<number, (r: CallResult) => void>();
let seq = 0;
const attempts = { flaky: 0 };

interface CallResult {
  counts: Record<string, number>;
  errors: Record<string, number>;
}

type Handler = (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<{ backend: string }>) => void;

async function startBackend(handler: Handler): Promise<number> {
  const def = protoLoader.loadSync(PROTO, { keepCase: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { weft: { test: { Echo: grpc.ServiceClientConstructor } } };
  const server = new grpc.Server();
  server.addService(pkg.weft.test.Echo.service, { Call: handler });
  backends.push(server);
  return new Promise((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))));
}

const ok =
  (name: string): Handler =>
  (_call, cb) =>
    cb(null, { backend: name });
const unavailable: Handler = (_call, cb) => cb({ code: grpc.status.UNAVAILABLE, details: 'always failing' });

function calls(target: string, n: number, metadata: Record<string, string> = {}, concurrency = 4): Promise<CallResult> {
  const id = ++seq;
  return new Promise((resolve, reject) => {
    if (!child?.stdin) return reject(new Error('client process not running'));
    replies.set(id, resolve);
    child.stdin.write(`${JSON.stringify({ id, n, metadata, concurrency, deadlineMs: 3000, target })}\n`);
  });
}

function policy(name: string, spec: Record<string, unknown>): Resource {
  return { apiVersion: 'weft.dev/v1alpha1', kind: 'BackendPolicy', metadata: { name, namespace: 'default' }, spec };
}

const T = (svc: string): string => `xds:///${svc}.default:8000`;

before(async () => {
  ({ store, cleanup } = await tempStore());
  const flaky = await startBackend((call, cb) => {
    attempts.flaky++;
    if (call.metadata.get('grpc-previous-rpc-attempts').length === 0) cb({ code: grpc.status.UNAVAILABLE, details: 'first attempt fails' });
    else cb(null, { backend: 'flaky' });
  });
  const plain = await startBackend(ok('plain'));
  const resources: Resource[] = [
    service('retry', [{ port: 8000, targetPort: flaky, protocol: 'grpc' }], { app: 'flaky' }),
    workload('flaky-1', '127.0.0.1', { app: 'flaky' }, [flaky]),
    service('fault', [{ port: 8000, targetPort: plain, protocol: 'grpc' }], { app: 'plain' }),
    workload('plain-1', '127.0.0.1', { app: 'plain' }, [plain]),
    policy('retry', { targetRefs: [{ kind: 'Service', name: 'retry' }], retry: { attempts: 2, retryOn: ['unavailable'], backoff: { baseInterval: '10ms', maxInterval: '50ms' } } }),
    policy('fault', { targetRefs: [{ kind: 'Service', name: 'fault', port: 8000 }], faultInjection: { abort: { grpcStatus: grpc.status.PERMISSION_DENIED, percent: 100 } }, loadBalancer: { type: 'LeastRequest' } }),
  ];
  // Several backends per Service: every Workload serves the Service's one targetPort, so each
  // backend listens on its own loopback address (127.0.0.x) with the same port.
  const hashPort = await startOn(['127.0.0.11', '127.0.0.12', '127.0.0.13'], (i) => ok(`h${i + 1}`));
  resources.push(service('hash', [{ port: 8000, targetPort: hashPort, protocol: 'grpc' }], { app: 'hash' }));
  for (let i = 0; i < 3; i++) resources.push(workload(`hash-${i + 1}`, `127.0.0.${11 + i}`, { app: 'hash' }, [hashPort]));
  resources.push(policy('hash', { targetRefs: [{ kind: 'Service', name: 'hash' }], loadBalancer: { type: 'RingHash', hashOn: { header: 'x-user' } } }));
  const outlierPort = await startOn(['127.0.0.21', '127.0.0.22', '127.0.0.23'], (i) => (i === 0 ? unavailable : ok(`o${i + 1}`)));
  resources.push(service('outlier', [{ port: 8000, targetPort: outlierPort, protocol: 'grpc' }], { app: 'outlier' }));
  for (let i = 0; i < 3; i++) resources.push(workload(`outlier-${i + 1}`, `127.0.0.${21 + i}`, { app: 'outlier' }, [outlierPort]));
  resources.push(
    policy('outlier', {
      targetRefs: [{ kind: 'Service', name: 'outlier' }],
      outlierDetection: { interval: '100ms', baseEjectionTime: '30s', maxEjectionPercent: 50, successRate: { minimumHosts: 3, requestVolume: 5, stdevFactor: 1 } },
    }),
  );
  await store.putMany(resources);
  xds = await startXdsServer({ store, addr: '127.0.0.1:0', log: silent, debounceMs: 20 });
  const bootstrap = grpcBootstrap({ service: 'tester', namespace: 'default', xdsAddress: xds.address, nodeId: 'grpc-policy-tester' });
  child = spawn(process.execPath, [join(HERE, 'xds-grpc-client.js'), PROTO, T('fault')], {
    env: {
      ...process.env,
      GRPC_XDS_BOOTSTRAP_CONFIG: JSON.stringify(bootstrap),
      GRPC_XDS_BOOTSTRAP: '',
      GRPC_XDS_EXPERIMENTAL_ENABLE_RETRY: 'true',
      GRPC_XDS_EXPERIMENTAL_FAULT_INJECTION: 'true',
      GRPC_XDS_EXPERIMENTAL_ENABLE_RING_HASH: 'true',
      GRPC_EXPERIMENTAL_ENABLE_OUTLIER_DETECTION: 'true',
    },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const rl = createInterface({ input: child.stdout ?? process.stdin });
  rl.on('line', (line) => {
    const r = JSON.parse(line) as CallResult & { id: number };
    replies.get(r.id)?.(r);
    replies.delete(r.id);
  });
  // Ready when the fault Service answers with its configured abort: LDS, RDS, CDS, EDS all in.
  await eventually(async () => ((await calls(T('fault'), 1)).errors['error:PERMISSION_DENIED'] ?? 0) > 0, 'first call through xDS', 15_000, 50);
});

/** One server listening on the same (free) port at several loopback addresses. */
async function startOn(addresses: string[], handler: (i: number) => Handler): Promise<number> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const first = await startBackendAt(addresses[0] ?? '127.0.0.1', 0, handler(0)).catch(() => undefined);
    if (first === undefined) continue;
    let okAll = true;
    for (let i = 1; i < addresses.length; i++) {
      const p = await startBackendAt(addresses[i] ?? '', first, handler(i)).catch(() => undefined);
      if (p === undefined) okAll = false;
    }
    if (okAll) return first;
  }
  throw new Error('could not bind backends on one port across loopback addresses');
}

async function startBackendAt(host: string, port: number, handler: Handler): Promise<number> {
  const def = protoLoader.loadSync(PROTO, { keepCase: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { weft: { test: { Echo: grpc.ServiceClientConstructor } } };
  const server = new grpc.Server();
  server.addService(pkg.weft.test.Echo.service, { Call: handler });
  backends.push(server);
  return new Promise((resolve, reject) => server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
}

after(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child?.once('exit', r));
    child.stdin?.end();
    const t = setTimeout(() => child?.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  }
  for (const s of backends) s.forceShutdown();
  await xds?.close();
  await cleanup?.();
});

test('(a) a retry policy recovers from a backend that fails every first attempt with UNAVAILABLE', async () => {
  const before = attempts.flaky;
  const r = await calls(T('retry'), 50);
  assert.deepEqual(r.errors, {});
  assert.deepEqual(r.counts, { flaky: 50 });
  const seen = attempts.flaky - before;
  console.log(`# retry: 50 calls OK, backend saw ${seen} attempts`);
  assert.equal(seen, 100, 'each call: one failed attempt, one retry');
});

test('(b) a fault-injection abort returns the configured gRPC status', async () => {
  const r = await calls(T('fault'), 50);
  assert.deepEqual(r.counts, {});
  assert.deepEqual(r.errors, { 'error:PERMISSION_DENIED': 50 });
  // LeastRequest (which gRPC NACKs) reached this client degraded to ROUND_ROBIN, and was ACKed.
  const cds = xds.ads.configOf('grpc-policy-tester')?.CDS ?? [];
  const cluster = cds.find((c) => c.name === 'outbound|8000||fault.default.svc.cluster.local');
  assert.equal(cluster?.lb_policy, 'ROUND_ROBIN');
  const st = xds.ads.listClients().find((c) => c.nodeId === 'grpc-policy-tester');
  assert.equal(st?.types.CDS?.lastNack, undefined);
  assert.equal(st?.types.CDS?.ackedVersion, st?.types.CDS?.sentVersion);
});

test('(c) RING_HASH with a header hash policy: same key, same backend; different keys spread', async () => {
  const alice = await calls(T('hash'), 100, { 'x-user': 'alice' });
  assert.deepEqual(alice.errors, {});
  assert.equal(Object.keys(alice.counts).length, 1, `alice went to ${JSON.stringify(alice.counts)}`);
  const used = new Set<string>();
  for (let k = 0; k < 20; k++) {
    const r = await calls(T('hash'), 5, { 'x-user': `user-${k}` }, 1);
    assert.deepEqual(r.errors, {});
    assert.equal(Object.keys(r.counts).length, 1, `user-${k} went to ${JSON.stringify(r.counts)}`);
    for (const b of Object.keys(r.counts)) used.add(b);
  }
  console.log(`# ring hash: alice → ${Object.keys(alice.counts).join()}; 20 keys over ${used.size} backends`);
  assert.ok(used.size >= 2, '20 keys all landed on one backend');
});

test('(d) outlier detection (success rate) ejects a backend that always fails', async () => {
  let failed = 0;
  let clean = 0;
  await eventually(
    async () => {
      const r = await calls(T('outlier'), 30, {}, 3);
      const errs = Object.values(r.errors).reduce((a, b) => a + b, 0);
      failed += errs;
      clean = errs === 0 ? clean + 1 : 0;
      return clean >= 3;
    },
    'three clean rounds of 30 calls after ejection',
    10_000,
    50,
  );
  console.log(`# outlier: ${failed} failed calls before the bad backend was ejected`);
  assert.ok(failed > 0, 'the bad backend was called before being ejected');
  const st = xds.ads.listClients().find((c) => c.nodeId === 'grpc-policy-tester');
  for (const t of ['LDS', 'RDS', 'CDS', 'EDS'] as const) assert.equal(st?.types[t]?.lastNack, undefined, `${t} not NACKed`);
});
