// `weft run` end to end, all real processes: `weft control`, `weft run` (its
// sidecar in-process) and an app under it that proves, by what it can do on its
// first try, that the sidecar was ready before it started (its hosts file
// written, with --hosts-file; its configuration over mTLS, with --xds-tls). A real HTTP server
// and a real TCP echo server stand for the Services it calls (registered as
// Workloads by hand, as Istio's WorkloadEntry).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killAll, runWeft, startWeft, stderrTails, stop, until, type Running } from './helpers/procs.js';

const CONTROL_READY = /^weft control ready: api=(\S+) xds=(\S+) data=(\S+)$/;
/** The app's first line: what it saw before doing anything else. */
const APP_FIRST = /^app-first (.*)$/;

let tmp: string;
let dataDir: string;
let apiUrl: string;
let xdsAddr: string;
/** The control plane's xDS over mTLS (--xds-tls-addr). */
let xdsTlsAddr: string;
let catalog: Server;
let ledger: TcpServer;
let appScript: string;
let failed = false;
const ledgerSockets = new Set<import('node:net').Socket>();

/**
 * The app under `weft run`. Its first act is a request through HTTP_PROXY to
 * catalog and a line through ledger's local TCP port; it prints the outcome,
 * then does what argv[2] says: `exit N`, `job MS` (keeps calling catalog for MS
 * ms, then asks the sidecar's admin /ready and exits 0), `signal` (waits for
 * SIGTERM and exits 7 when it comes). An argument `hosts=PATH`: the first line
 * also carries that file as the app found it.
 */
const APP = String.raw`
import { request } from 'node:http';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
const proxy = new URL(process.env.HTTP_PROXY);
function get(url) {
  const u = new URL(url);
  return new Promise((resolve) => {
    const req = request({ host: proxy.hostname, port: Number(proxy.port), path: u.href, headers: { host: u.host } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c) => (body += c)).on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', (e) => resolve({ status: 0, body: e.message }));
    req.end();
  });
}
function line(url, text) {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = connect(Number(u.port), u.hostname);
    let buf = '';
    s.on('data', (c) => { buf += c; if (buf.includes('\n')) { s.destroy(); resolve(buf.trim()); } });
    s.on('error', (e) => resolve('error ' + e.message));
    s.on('connect', () => s.write(text + '\n'));
  });
}
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('WEFT_') || k === 'PORT' || k.toLowerCase() === 'http_proxy' || k === 'NO_PROXY'));
const first = await get(process.env.WEFT_CATALOG_URL + '/items');
const tcp = process.env.WEFT_LEDGER_URL ? await line(process.env.WEFT_LEDGER_URL, 'hello') : 'no ledger';
const hostsArg = process.argv.slice(2).find((a) => a.startsWith('hosts='));
const hosts = hostsArg === undefined ? undefined : readFileSync(hostsArg.slice('hosts='.length), 'utf8');
console.log('app-first ' + JSON.stringify({ first, tcp, env, hosts }));
const [mode, arg] = process.argv.slice(2);
if (mode === 'exit') process.exit(Number(arg));
if (mode === 'job') {
  const end = Date.now() + Number(arg);
  let ok = 0, bad = 0;
  while (Date.now() < end) {
    const r = await get(process.env.WEFT_CATALOG_URL + '/items');
    if (r.status === 200) ok++; else bad++;
    await new Promise((r) => setTimeout(r, 50));
  }
  const ready = await fetch(process.env.WEFT_PROXY_ADMIN + '/ready').then((r) => r.status, (e) => e.message);
  console.log('app-job ' + JSON.stringify({ ok, bad, ready }));
  process.exit(0);
}
if (mode === 'signal') {
  process.on('SIGTERM', () => { console.log('app-got SIGTERM'); process.exit(7); });
  console.log('app-waiting');
  setInterval(() => {}, 1000);
}
`;

function step(name: string, fn: () => Promise<void>): void {
  test(name, async () => {
    try {
      await fn();
    } catch (e) {
      failed = true;
      throw e;
    }
  });
}

function listen(server: Server | TcpServer): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
  });
}

async function apply(yaml: string): Promise<void> {
  const r = await runWeft(['apply', '-f', '-', '--server', apiUrl, '--data-dir', dataDir], { home: tmp, input: yaml });
  assert.equal(r.code, 0, r.stderr);
}

function startRunWith(appArgs: readonly string[], extra: readonly string[] = []): Promise<{ run: Running; match: RegExpExecArray }> {
  return startWeft('weft run', ['run', '--service', 'job', '--xds', xdsAddr, '--api', apiUrl, '--log-level', 'warn', ...extra, '--', process.execPath, appScript, ...appArgs], APP_FIRST, { home: tmp, timeoutMs: 60_000 });
}

interface FirstLine {
  first: { status: number; body: string };
  tcp: string;
  env: Record<string, string>;
  hosts?: string;
}

/** A free loopback port (bound, read, released): the control plane's TLS xDS port. */
function freePort(): Promise<number> {
  const s = createTcpServer();
  return listen(s).then((port) => new Promise((resolve) => s.close(() => resolve(port))));
}

async function joinToken(sa: string): Promise<string> {
  const r = await runWeft(['token', 'create', '--namespace', 'default', '--service-account', sa, '--server', apiUrl, '--data-dir', dataDir], { home: tmp });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

describe('weft run', { timeout: 240_000 }, () => {
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'weft-run-'));
    dataDir = join(tmp, 'data');
    appScript = join(tmp, 'app.mjs');
    await writeFile(appScript, APP);
    catalog = createHttpServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`catalog says hi to ${req.url ?? ''}`);
    });
    ledger = createTcpServer((s) => {
      ledgerSockets.add(s);
      s.on('close', () => ledgerSockets.delete(s));
      s.on('error', () => {});
      s.on('data', (c) => s.write(`echo ${c.toString('utf8')}`));
    });
    const [catalogPort, ledgerPort] = [await listen(catalog), await listen(ledger)];
    xdsTlsAddr = `127.0.0.1:${await freePort()}`;
    const c = await startWeft('weft control', ['control', '--data-dir', dataDir, '--api-addr', '127.0.0.1:0', '--xds-addr', '127.0.0.1:0', '--xds-tls-addr', xdsTlsAddr, '--log-level', 'warn'], CONTROL_READY, { home: tmp });
    apiUrl = c.match[1]!;
    xdsAddr = c.match[2]!;
    // mTLS is not what this file tests: plaintext keeps it about the lifecycle.
    await apply(`apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata: {name: default}
spec: {mtls: {mode: DISABLE}}
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: catalog, namespace: default}
spec:
  selector: {app: catalog}
  ports: [{name: http, port: 80, targetPort: ${catalogPort}, protocol: http}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: catalog-0, namespace: default, labels: {app: catalog}}
spec: {address: 127.0.0.1, ports: [{port: ${catalogPort}}]}
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: ledger, namespace: default}
spec:
  selector: {app: ledger}
  ports: [{name: tcp, port: 9000, targetPort: ${ledgerPort}, protocol: tcp}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: ledger-0, namespace: default, labels: {app: ledger}}
spec: {address: 127.0.0.1, ports: [{port: ${ledgerPort}}]}
`);
  });

  after(async () => {
    if (failed) process.stderr.write(`${stderrTails()}\n`);
    await killAll();
    catalog?.closeAllConnections();
    catalog?.close();
    for (const s of ledgerSockets) s.destroy();
    ledger?.close();
    await rm(tmp, { recursive: true, force: true });
  });

  step('the app starts only once the sidecar is ready: its first calls through the mesh succeed, with the environment it was promised', async () => {
    const { run, match } = await startRunWith(['exit', '0'], ['--port', '18080', '--labels', 'app=job,version=v9']);
    const seen = JSON.parse(match[1]!) as FirstLine;
    assert.equal(seen.first.status, 200, `first request through HTTP_PROXY: ${JSON.stringify(seen.first)}`);
    assert.equal(seen.first.body, 'catalog says hi to /items');
    assert.equal(seen.tcp, 'echo hello', 'a line through the sidecar\'s local port for the TCP Service ledger');
    const env = seen.env;
    assert.match(env.HTTP_PROXY ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(env.http_proxy, env.HTTP_PROXY);
    assert.match(env.NO_PROXY ?? '', /127\.0\.0\.1/);
    assert.equal(env.WEFT_CATALOG_URL, 'http://catalog.default');
    assert.equal(env.WEFT_CATALOG_DEFAULT_URL, 'http://catalog.default');
    assert.match(env.WEFT_LEDGER_URL ?? '', /^tcp:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(env.WEFT_LEDGER_URL, 'tcp://127.0.0.1:9000', 'each sidecar takes a free local port for TCP Services (--tcp-ports free)');
    assert.equal(env.WEFT_SERVICE, 'job');
    assert.equal(env.WEFT_NAMESPACE, 'default');
    assert.equal(env.PORT, '18080');
    assert.match(env.WEFT_PROXY_ADMIN ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(await run.exited, 0);
    assert.match(run.stderr(), /weft run ready: service=job\.default admin=\S+ outbound=127\.0\.0\.1:\d+ inbound=\d+ node=sidecar~127\.0\.0\.1~job\.default~18080/);
  });

  step('the workload registered itself, with its labels, through the node metadata', async () => {
    // A Service selecting only what the labels say: its endpoints show the registration.
    await apply(`apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: jobs-v9, namespace: default}
spec:
  selector: {version: v9}
  ports: [{name: http, port: 80, targetPort: 18081, protocol: http}]
`);
    const { run } = await startRunWith(['signal'], ['--port', '18081', '--labels', 'app=job,version=v9', '--service-account', 'jobber']);
    const nodeId = 'sidecar~127.0.0.1~job.default~18081';
    const client = await until('the node among the xDS clients, with a workload', 20_000, async () => {
      const r = (await (await fetch(`${apiUrl}/xds/clients`)).json()) as { items: { nodeId: string; workload?: string }[] };
      return r.items.find((c) => c.nodeId === nodeId && c.workload !== undefined);
    });
    assert.match(client.workload!, /^default\/job-/);
    await until('the labelled workload as an endpoint of jobs-v9', 20_000, async () => {
      const text = await (await fetch(`${apiUrl}/xds/clients/${encodeURIComponent(nodeId)}/config?type=endpoints`)).text();
      return text.includes('jobs-v9.default') && text.includes('18081') ? true : undefined;
    });
    assert.equal(await stop(run, 'SIGTERM'), 7);
  });

  step('when the app exits, the sidecar stops and weft run exits with the app\'s code', async () => {
    const { run, match } = await startRunWith(['exit', '3']);
    const admin = (JSON.parse(match[1]!) as FirstLine).env.WEFT_PROXY_ADMIN!;
    assert.equal(await run.exited, 3);
    await assert.rejects(fetch(`${admin}/ready`), 'the sidecar\'s admin endpoint is gone with it');
    assert.match(run.stderr(), /the app exited with code 3; draining the sidecar/);
  });

  step('SIGTERM to weft run reaches the app; its exit code is weft run\'s', async () => {
    const { run } = await startRunWith(['signal']);
    await until('the app waits', 10_000, async () => (run.stdout().includes('app-waiting') ? true : undefined));
    run.proc.kill('SIGTERM');
    assert.equal(await run.exited, 7);
    assert.match(run.stdout(), /app-got SIGTERM/);
  });

  step('a 2 s job finishes with the mesh up the whole time; the sidecar stops only after it', async () => {
    const { run } = await startRunWith(['job', '2000']);
    assert.equal(await run.exited, 0);
    const m = /^app-job (.*)$/m.exec(run.stdout());
    assert.ok(m, run.stdout());
    const job = JSON.parse(m[1]!) as { ok: number; bad: number; ready: number };
    assert.equal(job.bad, 0);
    assert.ok(job.ok >= 10, `calls during the job: ${job.ok}`);
    assert.equal(job.ready, 200, 'the sidecar was still ready at the end of the job');
  });

  step('a command that does not exist fails clearly, after stopping the sidecar', async () => {
    const r = await runWeft(['run', '--service', 'job', '--xds', xdsAddr, '--api', apiUrl, '--log-level', 'warn', '--', join(tmp, 'no-such-command')], { home: tmp });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /cannot start .*no-such-command: no such command/);
  });

  step('--hosts-file: the file lists every Service at its VIP before the app starts', async () => {
    const hostsPath = join(tmp, 'hosts');
    const { run, match } = await startRunWith(['exit', '0', `hosts=${hostsPath}`], ['--hosts-file', hostsPath]);
    const seen = JSON.parse(match[1]!) as FirstLine;
    assert.match(seen.hosts ?? '', /^240\.240\.\d+\.\d+ catalog\.default catalog\.default\.svc catalog\.default\.svc\.cluster\.local$/m, seen.hosts);
    assert.match(seen.hosts ?? '', /^240\.240\.\d+\.\d+ ledger\.default /m);
    assert.match(seen.hosts ?? '', /^127\.0\.0\.1 localhost$/m);
    assert.equal(await run.exited, 0);
    assert.equal(await readFile(hostsPath, 'utf8'), seen.hosts, 'rewritten only when the Services change');
  });

  step('--xds-tls: the sidecar gets its configuration over mTLS with its workload certificate', async () => {
    const token = await joinToken('job');
    const { run, match } = await startRunWith(['exit', '0'], ['--xds', xdsTlsAddr, '--xds-tls', '--token', token]);
    const seen = JSON.parse(match[1]!) as FirstLine;
    assert.equal(seen.first.status, 200, `first request through HTTP_PROXY: ${JSON.stringify(seen.first)}`);
    assert.match(seen.env.WEFT_SPIFFE_ID ?? '', /^spiffe:\/\/[^/]+\/ns\/default\/sa\/job$/);
    assert.equal(await run.exited, 0);
    assert.match(run.stderr(), /weft run ready: .* identity=spiffe:\/\/\S+\/ns\/default\/sa\/job/);
  });

  step('--xds-tls speaks TLS only: against the plaintext xDS port the sidecar never gets a configuration', async () => {
    const token = await joinToken('job');
    const r = await runWeft(['run', '--service', 'job', '--xds', xdsAddr, '--xds-tls', '--token', token, '--api', apiUrl, '--ready-timeout', '3000', '--log-level', 'silent', '--', process.execPath, appScript, 'exit', '0'], { home: tmp, timeoutMs: 30_000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /got no configuration .* within 3000 ms/);
    assert.doesNotMatch(r.stdout, /app-first/, 'the app never started');
  });

  step('--xds-tls without a join token is a usage error, before anything starts', async () => {
    const r = await runWeft(['run', '--service', 'job', '--xds-tls', '--', process.execPath, appScript, 'exit', '0'], { home: tmp });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--xds-tls authenticates with the workload certificate: pass the join token with --token/);
  });

});
