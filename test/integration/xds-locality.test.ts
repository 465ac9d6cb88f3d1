// Locality failover from the control plane, all real processes: `weft control`,
// a client sidecar `weft proxy --locality r1/z1 --concurrency 1`, and two
// upstreams (node:http child processes on 127.0.0.1 and 127.0.0.2 sharing a
// port) registered by Workload YAML, one in r1/z1 and one in r1/z2. The control
// plane puts the same-zone one at priority 0 and the other at priority 1; the
// proxy fails over when the same-zone one is marked UNHEALTHY or killed.
// Readiness is a printed line or a condition polled with a deadline; never a sleep.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { many, tally, viaProxy, type Reply } from '../e2e/helpers/http.js';
import { childEnv, killAll, runWeft, startWeft, stderrTails, until } from '../e2e/helpers/procs.js';

const CONTROL_READY = /^weft control ready: api=(\S+) xds=(\S+) data=(\S+)$/;
const PROXY_READY = /^weft proxy ready: admin=(\S+) outbound=(\S+) node=(\S+)$/;

const UPSTREAM = `
const http = require('node:http');
const [name, host, port] = process.argv.slice(1);
const server = http.createServer((req, res) => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end(name); });
server.keepAliveTimeout = 60000;
server.listen(Number(port), host, () => console.log('upstream ready ' + server.address().port));
`;

interface Upstream {
  name: string;
  host: string;
  port: number;
  proc: ChildProcess;
  exited: Promise<void>;
}

const upstreams: Upstream[] = [];
let tmp: string;
let dataDir: string;
let apiUrl: string;
let admin: string;
let outbound: string;
const agent = new Agent({ keepAlive: true, maxSockets: 16 });
let failed = false;

function startUpstream(name: string, host: string, port: number): Promise<Upstream> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['-e', UPSTREAM, name, host, String(port)], { env: childEnv(tmp), stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<void>((res) => proc.once('exit', () => res()));
    const u: Upstream = { name, host, port, proc, exited };
    upstreams.push(u);
    let err = '';
    proc.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    const timer = setTimeout(() => reject(new Error(`upstream ${name}: not ready in 10 s: ${err}`)), 10_000);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`upstream ${name} exited before it was ready: ${err}`));
    });
    createInterface({ input: proc.stdout }).on('line', (line) => {
      const m = /^upstream ready (\d+)$/.exec(line);
      if (m === null) return;
      clearTimeout(timer);
      u.port = Number(m[1]);
      resolve(u);
    });
  });
}

async function weft(args: readonly string[], input?: string): Promise<string> {
  const r = await runWeft([...args, '--server', apiUrl, '--data-dir', dataDir], { home: tmp, ...(input !== undefined ? { input } : {}) });
  assert.equal(r.code, 0, `weft ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

const apply = async (yaml: string): Promise<void> => void (await weft(['apply', '-f', '-'], yaml));

function workload(u: Upstream, zone: string, health = 'HEALTHY'): string {
  return `apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: catalog-${u.name}, namespace: default, labels: {app: catalog}}
spec:
  address: ${u.host}
  ports: [{port: ${u.port}}]
  locality: {region: r1, zone: ${zone}}
  health: ${health}
`;
}

/** Who answered 20 sequential GETs (body = upstream name; failures as `status`). */
async function who(): Promise<Record<string, number>> {
  const replies = await many(20, 1, () => viaProxy(outbound, 'http://catalog.default/', agent).catch((e: Error): Reply => ({ status: 0, headers: {}, body: e.message })));
  return tally(replies, (r) => (r.status === 200 ? r.body : `status ${r.status}`));
}

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

let z1: Upstream;
let z2: Upstream;

before(async () => {
  failed = true;
  tmp = await mkdtemp(join(tmpdir(), 'weft-xds-locality-'));
  dataDir = join(tmp, 'data');
  const c = await startWeft('weft control', ['control', '--data-dir', dataDir, '--api-addr', '127.0.0.1:0', '--xds-addr', '127.0.0.1:0', '--log-level', 'warn'], CONTROL_READY, { home: tmp });
  apiUrl = c.match[1]!;
  const xdsAddr = c.match[2]!;
  z1 = await startUpstream('z1', '127.0.0.1', 0);
  z2 = await startUpstream('z2', '127.0.0.2', z1.port);
  await apply([
    `apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: catalog, namespace: default}
spec:
  selector: {app: catalog}
  ports:
  - {name: http, port: 80, targetPort: ${z1.port}, protocol: http}
`,
    workload(z1, 'z1'),
    workload(z2, 'z2'),
  ].join('---\n'));
  const w = await startWeft('weft proxy web', [
    'proxy', '--xds', xdsAddr, '--service', 'web', '--namespace', 'default', '--concurrency', '1', '--locality', 'r1/z1',
    '--admin-addr', '127.0.0.1:0', '--outbound-addr', '127.0.0.1:0', '--log-level', 'warn',
  ], PROXY_READY, { home: tmp });
  admin = w.match[1]!;
  outbound = w.match[2]!;
  failed = false;
});

after(async () => {
  agent.destroy();
  const tails = failed ? stderrTails() : '';
  if (tails !== '') process.stdout.write(tails.replace(/^/gm, '# ') + '\n');
  await Promise.all(upstreams.map((u) => {
    if (u.proc.exitCode === null && u.proc.signalCode === null) u.proc.kill('SIGKILL');
    return u.exited;
  }));
  await killAll();
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
});

describe('locality failover: EDS priorities relative to the proxy\'s --locality', { concurrency: false }, () => {
  step('the proxy gets the same-zone locality at priority 0, the other zone at priority 1', async () => {
    const groups = await until('the catalog endpoints in the web sidecar', 10_000, async () => {
      const dump = JSON.parse(await (await fetch(`${admin}/config_dump`)).text()) as unknown;
      const found: { zone: string; priority: number }[] = [];
      const walk = (v: unknown): void => {
        if (Array.isArray(v)) return v.forEach(walk);
        if (v === null || typeof v !== 'object') return;
        const o = v as Record<string, unknown>;
        if (typeof o.cluster_name === 'string' && o.cluster_name.includes('catalog') && Array.isArray(o.endpoints)) {
          for (const g of o.endpoints as { locality?: { zone?: string }; priority?: number }[]) found.push({ zone: g.locality?.zone ?? '', priority: g.priority ?? 0 });
          return;
        }
        Object.values(o).forEach(walk);
      };
      walk(dump);
      return found.length === 2 ? found.sort((a, b) => a.zone.localeCompare(b.zone)) : undefined;
    });
    assert.deepEqual(groups, [{ zone: 'z1', priority: 0 }, { zone: 'z2', priority: 1 }]);
  });

  step('all requests go to the same-zone upstream', async () => {
    await until('catalog answers through the web sidecar', 10_000, async () => ((await who()).z1 === 20 ? true : undefined));
    assert.deepEqual(await who(), { z1: 20 });
  });

  step('same-zone Workload marked UNHEALTHY (weft apply): traffic fails over to the other zone, and back when HEALTHY', async () => {
    await apply(workload(z1, 'z1', 'UNHEALTHY'));
    await until('traffic on z2', 10_000, async () => ((await who()).z2 === 20 ? true : undefined));
    assert.deepEqual(await who(), { z2: 20 });
    await apply(workload(z1, 'z1', 'HEALTHY'));
    await until('traffic back on z1', 10_000, async () => ((await who()).z1 === 20 ? true : undefined));
    assert.deepEqual(await who(), { z1: 20 });
  });

  step('same-zone upstream killed (retry + outlier detection): traffic fails over to the other zone', async () => {
    await apply(`apiVersion: weft.dev/v1alpha1
kind: BackendPolicy
metadata: {name: catalog-resilience, namespace: default}
spec:
  targetRefs: [{kind: Service, name: catalog}]
  retry: {}
  outlierDetection: {}
`);
    await until('the catalog policy in the web sidecar', 10_000, async () => ((await (await fetch(`${admin}/config_dump`)).text()).includes('outlier_detection') ? true : undefined));
    z1.proc.kill('SIGKILL');
    await z1.exited;
    await until('traffic on z2 after the kill', 15_000, async () => ((await who()).z2 === 20 ? true : undefined), 100);
    assert.deepEqual(await who(), { z2: 20 });
  });
});
