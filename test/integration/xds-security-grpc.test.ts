// Proxyless gRPC over mTLS, end to end with real processes: `weft control`,
// `weft bootstrap grpc --cert-dir --token --watch` (the agent that makes the
// key locally and keeps the certificate files fresh) for an XdsServer, and a
// one-shot `weft bootstrap grpc --cert-dir --token` for a client; then a real
// @grpc/grpc-js-xds client calls the real XdsServer through what the control
// plane sent (STRICT: certificate providers on both sides). No sleeps: ready
// lines and polled state.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, rm, mkdtemp, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { killAll, ROOT, runWeft, startWeft, stderrTails, until } from '../e2e/helpers/procs.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const PEER = join(HERE, 'xds-security-grpc-peer.js');
const PROTO = join(ROOT, 'test/fixtures/echo.proto');
const CONTROL_READY = /^weft control ready: api=(\S+) xds=(\S+) data=(\S+)$/;
const AGENT_READY = /^weft bootstrap: keeping (\S+) fresh for (\S+);/;

let tmp: string;
let dataDir: string;
let apiUrl: string;
let xdsAddr: string;
let port: number;
let server: ChildProcess | undefined;
let failed = false;

async function weft(args: readonly string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runWeft([...args, '--server', apiUrl, '--data-dir', dataDir], { home: tmp, ...(input !== undefined ? { input } : {}) });
}

async function joinToken(sa: string): Promise<string> {
  const r = await weft(['token', 'create', '--namespace', 'default', '--service-account', sa, '--ttl', '1h']);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

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

function peer(args: readonly string[], bootstrap: string): ChildProcess {
  return spawn(process.execPath, [PEER, ...args], { env: { ...process.env, GRPC_XDS_BOOTSTRAP: bootstrap, GRPC_XDS_BOOTSTRAP_CONFIG: '' }, stdio: ['pipe', 'pipe', 'pipe'] });
}

function firstLine(p: ChildProcess, what: string, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let err = '';
    p.stderr?.setEncoding('utf8').on('data', (c: string) => (err += c));
    const t = setTimeout(() => reject(new Error(`${what}: no output within ${timeoutMs} ms; stderr: ${err}`)), timeoutMs);
    createInterface({ input: p.stdout! }).once('line', (l) => {
      clearTimeout(t);
      resolve(l);
    });
    p.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`${what} exited (${String(code)}); stderr: ${err}`));
    });
  });
}

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'weft-xds-security-grpc-'));
  dataDir = join(tmp, 'data');
  const c = await startWeft('weft control', ['control', '--data-dir', dataDir, '--api-addr', '127.0.0.1:0', '--xds-addr', '127.0.0.1:0', '--log-level', 'warn'], CONTROL_READY, { home: tmp });
  apiUrl = c.match[1]!;
  xdsAddr = c.match[2]!;
  port = await freePort();
  const applied = await weft(['apply', '-f', '-'], `
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: echo, namespace: default }
spec:
  ports: [{ port: 8000, targetPort: ${port}, protocol: grpc }]
---
apiVersion: weft.dev/v1alpha1
kind: SecurityPolicy
metadata: { name: strict, namespace: default }
spec:
  mtls: { mode: STRICT }
`);
  assert.equal(applied.code, 0, applied.stderr);
});

after(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server!.once('exit', r));
    server.stdin?.end();
    const t = setTimeout(() => server!.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  }
  const tails = failed ? stderrTails() : '';
  if (tails !== '') process.stdout.write(tails.replace(/^/gm, '# ') + '\n');
  await killAll();
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
});

describe('proxyless gRPC mTLS through xDS security', { concurrency: false }, () => {
  test('the agent writes key, certificate and bundle (key 0600) and a bootstrap with certificate_providers', async () => {
    try {
      const certs = join(tmp, 'server-certs');
      const bootstrap = join(tmp, 'server-bootstrap.json');
      const m = await startWeft('weft bootstrap --watch', [
        'bootstrap', 'grpc', '--service', 'echo', '--namespace', 'default', '--server', '--xds', xdsAddr, '--workload-address', '127.0.0.1', '--workload-port', String(port),
        '--node-id', 'echo-server', '--cert-dir', certs, '--token', await joinToken('echo'), '--api', apiUrl, '--out', bootstrap, '--watch', '--refresh-interval', '1',
      ], AGENT_READY, { home: tmp });
      assert.equal(m.match[2], 'spiffe://cluster.local/ns/default/sa/echo');
      assert.equal((await stat(join(certs, 'key.pem'))).mode & 0o777, 0o600);
      assert.match(await readFile(join(certs, 'cert.pem'), 'utf8'), /BEGIN CERTIFICATE/);
      assert.match(await readFile(join(certs, 'ca.pem'), 'utf8'), /BEGIN CERTIFICATE/);
      const b = JSON.parse(await readFile(bootstrap, 'utf8')) as { certificate_providers: Record<string, { plugin_name: string; config: Record<string, string> }>; node: { metadata: Record<string, string> } };
      assert.equal(b.certificate_providers.weft?.plugin_name, 'file_watcher');
      assert.equal(b.certificate_providers.weft?.config.private_key_file, join(certs, 'key.pem'));
      assert.equal(b.node.metadata.WEFT_GRPC_MTLS, 'true');
      server = peer(['server', PROTO, `127.0.0.1:${port}`, 'echo-1'], bootstrap);
      assert.equal(await firstLine(server, 'XdsServer'), 'serving');
    } catch (e) {
      failed = true;
      throw e;
    }
  });

  test('a grpc-js-xds client calls the XdsServer over mTLS; the server sees the client SVID', async () => {
    try {
      const certs = join(tmp, 'client-certs');
      const bootstrap = join(tmp, 'client-bootstrap.json');
      const r = await runWeft(['bootstrap', 'grpc', '--service', 'tester', '--namespace', 'default', '--xds', xdsAddr, '--node-id', 'tester', '--cert-dir', certs, '--token', await joinToken('tester'), '--api', apiUrl, '--out', bootstrap], { home: tmp });
      assert.equal(r.code, 0, r.stderr);
      let last = '';
      const answer = await until('an mTLS call through xDS', 30_000, async () => {
        last = await firstLine(peer(['client', PROTO, 'xds:///echo.default:8000'], bootstrap), 'client');
        return last.startsWith('echo-1|') ? last : undefined;
      }, 200).catch((e: unknown) => {
        throw new Error(`${String(e)}; last answer: ${last}`);
      });
      const [, security, sans] = answer.split('|');
      assert.equal(security, 'ssl');
      assert.match(sans ?? '', /URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/tester/);
    } catch (e) {
      failed = true;
      throw e;
    }
  });

  test('STRICT: a plaintext client is refused by the XdsServer', async () => {
    const def = protoLoader.loadSync(PROTO, { keepCase: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { weft: { test: { Echo: new (t: string, c: grpc.ChannelCredentials) => grpc.Client & { Call(r: object, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null) => void): void } } } };
    const c = new pkg.weft.test.Echo(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const err = await new Promise<grpc.ServiceError | null>((resolve) => c.Call({ msg: 'x' }, { deadline: Date.now() + 5000 }, resolve));
    c.close();
    assert.ok(err, 'a plaintext call must fail');
    assert.equal(err.code, grpc.status.UNAVAILABLE);
  });
});
