// `weft control` with its xDS server, end to end: the built binary on port 0,
// a real proxyless gRPC client (@grpc/grpc-js-xds, in its own process, with a
// bootstrap made by `weft bootstrap grpc`) calling a real grpc-js backend, a
// raw ADS client that NACKs, and the CLI commands that look at them
// (`weft proxy-status`, `weft proxy-config`) plus `/metrics`. No sleeps:
// readiness is polled with deadlines.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { CLUSTER } from '../../src/xds/type-urls.js';
import { eventually, RawAdsClient } from '../integration/xds-helpers.js';

// dist/test/e2e/ → the repository root.
const ROOT = resolve(fileURLToPath(import.meta.url), '../../../..');
const CLI = join(ROOT, 'dist/src/cli/main.js');
const GRPC_CLIENT = join(ROOT, 'dist/test/integration/xds-grpc-client.js');
const PROTO = join(ROOT, 'test/fixtures/echo.proto');
const TARGET = 'xds:///echo.default:8000';
/** Real node ids carry `~`, `.` and `:`; the API path must still reach them. */
const GRPC_NODE = 'grpc-tester~127.0.0.1:0~tester.default~default.svc.cluster.local';
const NACK_NODE = 'sidecar~127.0.0.1~nacker-1.default~default.svc.cluster.local';

const children = new Set<ChildProcess>();
let tmp: string;
let dataDir: string;
let control: ChildProcess;
let apiUrl: string;
let xdsAddr: string;
let backend: grpc.Server | undefined;
let grpcClient: ChildProcess | undefined;
let raw: RawAdsClient | undefined;
let grpcClientStderr = '';

function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('WEFT_') && !k.startsWith('GRPC_')) env[k] = v;
  return { ...env, HOME: tmp, NO_COLOR: '1', ...extra };
}

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function weft(args: readonly string[], input = ''): Promise<Result> {
  return new Promise((resolvePromise, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: childEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(p);
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    p.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    p.on('error', reject);
    p.on('close', (code) => {
      children.delete(p);
      resolvePromise({ code, stdout, stderr });
    });
    p.stdin.end(input);
  });
}

/** `weft --server API ARGS`, which must succeed. */
async function ok(args: readonly string[], input = ''): Promise<string> {
  const r = await weft(['--server', apiUrl, ...args], input);
  assert.equal(r.code, 0, `weft ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function startControl(): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const proc = spawn(process.execPath, [CLI, 'control', '--data-dir', dataDir, '--api-addr', '127.0.0.1:0', '--xds-addr', '127.0.0.1:0', '--log-level', 'warn'], {
      cwd: ROOT,
      env: childEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    control = proc;
    children.add(proc);
    let stderr = '';
    proc.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    createInterface({ input: proc.stdout }).on('line', (line) => {
      const m = /^weft control ready: api=(\S+) xds=(\S+) data=(\S+)$/.exec(line);
      if (!m) return;
      apiUrl = m[1]!;
      xdsAddr = m[2]!;
      resolvePromise();
    });
    proc.on('exit', (code, signal) => {
      children.delete(proc);
      reject(new Error(`weft control exited (${code ?? signal}) before it was ready:\n${stderr}`));
    });
  });
}

async function startBackend(): Promise<number> {
  const def = protoLoader.loadSync(PROTO, { keepCase: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { weft: { test: { Echo: grpc.ServiceClientConstructor } } };
  backend = new grpc.Server();
  backend.addService(pkg.weft.test.Echo.service, {
    Call: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<{ backend: string }>) => cb(null, { backend: 'echo-a' }),
  });
  return new Promise((res, rej) => backend!.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? rej(err) : res(port))));
}

function meshYaml(port: number): string {
  return `apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: echo}
spec:
  ports: [{name: grpc, port: 8000, protocol: grpc}]
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: echo-a}
spec:
  selector: {app: echo-a}
  ports: [{name: grpc, port: 8000, targetPort: ${port}, protocol: grpc}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: echo-a-1}
spec:
  labels: {app: echo-a}
  address: 127.0.0.1
  ports: [{port: ${port}}]
  serviceAccount: default
  health: HEALTHY
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: echo}
spec:
  parentRefs: [{group: "", kind: Service, name: echo, port: 8000}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{group: "", kind: Service, name: echo-a, port: 8000, weight: 1}]
`;
}

function rawGetStatus(path: string): Promise<number | undefined> {
  return new Promise((res, rej) => {
    const req = request(`${apiUrl}/`, { path }, (r) => {
      r.resume();
      res(r.statusCode);
    });
    req.on('error', rej);
    req.end();
  });
}

interface CallResult {
  id: number;
  counts: Record<string, number>;
  errors: Record<string, number>;
}

const replies = new Map<number, (r: CallResult) => void>();
let seq = 0;

/** `n` calls through the proxyless client process. */
function calls(n: number): Promise<CallResult> {
  const id = ++seq;
  return new Promise((res, rej) => {
    if (!grpcClient?.stdin || grpcClient.exitCode !== null) return rej(new Error('the gRPC client process is not running'));
    replies.set(id, res);
    grpcClient.stdin.write(`${JSON.stringify({ id, n, deadlineMs: 2000 })}\n`);
  });
}

interface SyncState {
  state: string;
  message?: string;
}
interface StatusItem {
  nodeId: string;
  workload?: string;
  namespace: string;
  sync: Record<'CDS' | 'LDS' | 'EDS' | 'RDS', SyncState>;
}

async function proxyStatus(): Promise<StatusItem[]> {
  return (JSON.parse(await ok(['proxy-status', '-o', 'json'])) as { items: StatusItem[] }).items;
}

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'weft-xds-cli-'));
  dataDir = join(tmp, 'data');
  await startControl();
  const port = await startBackend();
  await ok(['--data-dir', dataDir, 'apply', '-f', '-'], meshYaml(port));

  const bootstrap = await ok(['bootstrap', 'grpc', '--service', 'tester', '--namespace', 'default', '--xds', xdsAddr, '--node-id', GRPC_NODE]);
  grpcClient = spawn(process.execPath, [GRPC_CLIENT, PROTO, TARGET], {
    cwd: ROOT,
    env: childEnv({ GRPC_XDS_BOOTSTRAP_CONFIG: bootstrap }),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.add(grpcClient);
  grpcClient.on('exit', () => children.delete(grpcClient!));
  grpcClient.stderr!.setEncoding('utf8').on('data', (c: string) => (grpcClientStderr += c));
  createInterface({ input: grpcClient.stdout! }).on('line', (line) => {
    const r = JSON.parse(line) as CallResult;
    replies.get(r.id)?.(r);
    replies.delete(r.id);
  });
});

after(async () => {
  raw?.close();
  for (const p of children) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  backend?.forceShutdown();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('weft control with xDS', () => {
  test('a proxyless gRPC client bootstrapped by "weft bootstrap grpc" calls the backend its routes name', async () => {
    const r = await eventually(async () => {
      const res = await calls(1);
      return res.counts['echo-a'] === 1 ? res : undefined;
    }, 'a successful call through xDS', 20_000, 100).catch((e: unknown) => {
      throw new Error(`${String(e)}\ngRPC client stderr:\n${grpcClientStderr}`);
    });
    assert.deepEqual(r.errors, {});
    const more = await calls(5);
    assert.deepEqual(more.counts, { 'echo-a': 5 });
  });

  test('weft proxy-status lists the client with every type SYNCED', async () => {
    const item = await eventually(async () => {
      const it = (await proxyStatus()).find((i) => i.nodeId === GRPC_NODE);
      return it && Object.values(it.sync).every((s) => s.state === 'SYNCED') ? it : undefined;
    }, 'the gRPC client synced on CDS, LDS, EDS and RDS', 10_000, 100);
    assert.equal(item.namespace, 'default');

    const table = await ok(['proxy-status']);
    const [header, ...rows] = table.trimEnd().split('\n');
    assert.match(header!, /^NAME\s+WORKLOAD\s+NAMESPACE\s+CDS\s+LDS\s+EDS\s+RDS\s+AGE$/);
    const row = rows.find((l) => l.startsWith(GRPC_NODE));
    assert.ok(row, table);
    assert.equal(row.match(/SYNCED/g)?.length, 4, row);
  });

  test('weft proxy-config shows the outbound| clusters, listeners, routes and endpoints sent to it', async () => {
    // A prefix is enough when it is unique; the full id goes URL-encoded on the wire.
    const clusters = JSON.parse(await ok(['proxy-config', 'grpc-tester', 'clusters', '-o', 'json'])) as { name: string }[];
    assert.ok(clusters.some((c) => c.name === 'outbound|8000||echo-a.default.svc.cluster.local'), JSON.stringify(clusters.map((c) => c.name)));
    assert.ok(clusters.every((c) => c.name.startsWith('outbound|')));

    const all = JSON.parse(await ok(['proxy-config', GRPC_NODE, 'all', '-o', 'json'])) as Record<string, { name?: string; cluster_name?: string }[]>;
    assert.equal(all.nodeId as unknown, GRPC_NODE);
    assert.ok(all.listeners!.some((l) => l.name === 'echo.default:8000'));
    assert.ok(all.routes!.length > 0);
    assert.ok(all.endpoints!.some((e) => e.cluster_name === 'outbound|8000||echo-a.default.svc.cluster.local'));

    // Default output is YAML.
    assert.match(await ok(['proxy-config', GRPC_NODE, 'listeners']), /^- "?@type"?: type\.googleapis\.com\/envoy\.config\.listener\.v3\.Listener/m);
  });

  test('weft proxy-config names an unknown proxy in one error line', async () => {
    const r = await weft(['--server', apiUrl, 'proxy-config', 'nobody', 'clusters']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^error: no connected xDS client matches "nobody" \(connected: .*grpc-tester/m);
    const bad = await weft(['--server', apiUrl, 'proxy-config', GRPC_NODE, 'bogus']);
    assert.equal(bad.code, 2, bad.stderr);
  });

  test('a client that NACKs shows as NACKED with its message', async () => {
    raw = new RawAdsClient(xdsAddr, NACK_NODE, { WEFT_NAMESPACE: 'default' });
    raw.send({ type_url: CLUSTER, resource_names: [] });
    const first = await raw.next(CLUSTER, 10_000);
    raw.send({ type_url: CLUSTER, resource_names: [], version_info: '', response_nonce: first.nonce, error_detail: { code: 3, message: 'cluster rejected by test' } });

    const item = await eventually(async () => (await proxyStatus()).find((i) => i.nodeId === NACK_NODE && i.sync.CDS.state === 'NACKED'), 'the NACK in proxy-status', 10_000, 100);
    assert.equal(item.sync.CDS.message, 'cluster rejected by test');
    // The other client is unaffected.
    assert.ok((await proxyStatus()).find((i) => i.nodeId === GRPC_NODE)?.sync.CDS.state === 'SYNCED');

    const table = await ok(['proxy-status']);
    const row = table.split('\n').find((l) => l.startsWith(NACK_NODE));
    assert.match(row ?? '', /NACKED: cluster rejected by test/);
    assert.match(row ?? '', /NOT SENT/);

    // What was NACKed is still what was sent: proxy-config shows it.
    const clusters = JSON.parse(await ok(['proxy-config', NACK_NODE, 'clusters', '-o', 'json'])) as unknown[];
    assert.ok(clusters.length > 0);
  });

  test('/metrics has the xDS and store gauges and process metrics', async () => {
    const text = await eventually(async () => {
      const res = await fetch(`${apiUrl}/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
      const t = await res.text();
      return /^weft_control_xds_clients 2$/m.test(t) ? t : undefined;
    }, 'two xDS clients in /metrics', 10_000, 100);
    assert.match(text, /^weft_control_xds_pushes_total(\{[^}]*\})? [1-9]\d*$/m);
    assert.match(text, /^weft_control_xds_nacks_total(\{[^}]*\})? [1-9]\d*$/m);
    const rev = /^weft_control_store_revision (\d+)$/m.exec(text);
    assert.ok(rev && Number(rev[1]) >= 4, 'store revision after applying four objects');
    assert.match(text, /^process_cpu_seconds_total /m);
  });

  test('the xDS endpoints refuse node ids that could name another path', async () => {
    // node:http sends the path as written; fetch would resolve %2e%2e itself.
    for (const id of ['%2e%2e', 'a%2Fb', 'a%5Cb', '%00', 'a%zz', 'a:b']) {
      assert.equal(await rawGetStatus(`/xds/clients/${id}/config`), 400, id);
    }
    const res = await fetch(`${apiUrl}/xds/clients/${encodeURIComponent(GRPC_NODE)}/config?type=routes`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body).sort(), ['nodeId', 'routes']);
  });

  test('weft control refuses a non-loopback --xds-addr without --xds-insecure-public', async () => {
    const r = await weft(['control', '--data-dir', join(tmp, 'other'), '--api-addr', '127.0.0.1:0', '--xds-addr', '0.0.0.0:0']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^error: --xds-addr 0\.0\.0\.0:0 is not a loopback address/m);
  });

  test('weft bootstrap grpc --server adds the server listener template and keeps the node id', async () => {
    const b = JSON.parse(await ok(['bootstrap', 'grpc', '--service', 'web', '--namespace', 'shop', '--server', '--node-id', 'web~1'])) as {
      xds_servers: { server_uri: string }[];
      node: { id: string; locality: unknown; metadata: Record<string, string> };
      server_listener_resource_name_template?: string;
    };
    assert.equal(b.xds_servers[0]!.server_uri, '127.0.0.1:15010');
    assert.equal(b.node.id, 'web~1');
    assert.deepEqual(b.node.locality, {});
    assert.equal(b.node.metadata.WEFT_NAMESPACE, 'shop');
    assert.equal(b.server_listener_resource_name_template, 'grpc/server?xds.resource.listening_address=%s');
    const plain = JSON.parse(await ok(['bootstrap', 'grpc', '--service', 'web'])) as Record<string, unknown>;
    assert.equal(plain.server_listener_resource_name_template, undefined);
  });

  test('the control plane is still alive', () => {
    assert.equal(control.exitCode, null);
  });
});
