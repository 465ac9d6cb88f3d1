// Resilience end to end, all real processes: `weft control`, one client sidecar
// (`weft proxy --concurrency 1`), and upstream replicas as node:http child
// processes registered by Workload YAML; BackendPolicies applied with `weft apply`.
// Readiness is a line a process prints or a condition polled with a deadline;
// never a sleep. Every loop is bounded; every process is killed in `after`.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { many, tally, viaProxy, type Reply } from './helpers/http.js';
import { childEnv, killAll, runWeft, startWeft, stderrTails, until } from './helpers/procs.js';

const CONTROL_READY = /^weft control ready: api=(\S+) xds=(\S+) data=(\S+)$/;
const PROXY_READY = /^weft proxy ready: admin=(\S+) outbound=(\S+) node=(\S+)$/;

/**
 * An upstream: answers `NAME` (200), or 503 in mode `503` (after `?ms=N`), and
 * counts what it served; `GET /__count` (not counted) says how many.
 */
const UPSTREAM = `
const http = require('node:http');
const [name, host, port, mode] = process.argv.slice(1);
let n = 0;
const server = http.createServer((req, res) => {
  if (req.url === '/__count') { res.end(String(n)); return; }
  n++;
  const ms = Number(new URL(req.url, 'http://x').searchParams.get('ms') ?? '0');
  const reply = () => {
    if (mode === '503') { res.writeHead(503, { 'content-type': 'text/plain' }); res.end('unavailable'); }
    else { res.writeHead(200, { 'content-type': 'text/plain', 'x-app': name }); res.end(name); }
  };
  if (ms > 0) setTimeout(reply, ms); else reply();
});
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

function startUpstream(name: string, host: string, port: number, mode = 'ok'): Promise<Upstream> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['-e', UPSTREAM, name, host, String(port), mode], { env: childEnv(tmp), stdio: ['ignore', 'pipe', 'pipe'] });
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
      resolve({ ...u, port: Number(m[1]) });
    });
  });
}

async function served(u: Upstream): Promise<number> {
  return Number(await (await fetch(`http://${u.host}:${u.port}/__count`)).text());
}

let tmp: string;
let dataDir: string;
let apiUrl: string;
let xdsAddr: string;
let admin: string;
let outbound: string;
const agent = new Agent({ keepAlive: true, maxSockets: 64 });
let failed = false;

function step(name: string, fn: () => Promise<void> | void): void {
  test(name, async () => {
    try {
      await fn();
    } catch (e) {
      failed = true;
      throw e;
    }
  });
}

async function weft(args: readonly string[], input?: string): Promise<string> {
  const r = await runWeft([...args, '--server', apiUrl, '--data-dir', dataDir], { home: tmp, ...(input !== undefined ? { input } : {}) });
  assert.equal(r.code, 0, `weft ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

const apply = async (yaml: string): Promise<void> => void (await weft(['apply', '-f', '-'], yaml));

function service(name: string, app: string, targetPort: number): string {
  return `apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: ${name}, namespace: default}
spec:
  selector: {app: ${app}}
  ports:
  - {name: http, port: 80, targetPort: ${targetPort}, protocol: http}
`;
}

function workload(name: string, app: string, address: string, port: number): string {
  return `apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: ${name}, namespace: default, labels: {app: ${app}}}
spec:
  address: ${address}
  ports: [{port: ${port}}]
`;
}

function policy(name: string, target: string, body: string): string {
  return `apiVersion: weft.dev/v1alpha1
kind: BackendPolicy
metadata: {name: ${name}, namespace: default}
spec:
  targetRefs: [${target}]
${body}`;
}

const get = (url: string): Promise<Reply> => viaProxy(outbound, url, agent);
const flags = (r: Reply): string => String(r.headers['x-weft-response-flags'] ?? '');

async function configDump(): Promise<string> {
  return (await fetch(`${admin}/config_dump`)).text();
}

async function ejections(): Promise<number> {
  const text = await (await fetch(`${admin}/metrics`)).text();
  let n = 0;
  for (const l of text.split('\n')) if (l.startsWith('weft_outlier_ejections_total{cluster_name="') && l.includes('catalog')) n += Number(l.split(' ').pop());
  return n;
}

let catalog: Upstream[] = [];
let flaky: Upstream;
let echo: Upstream;

before(async () => {
  failed = true;
  tmp = await mkdtemp(join(tmpdir(), 'weft-resilience-e2e-'));
  dataDir = join(tmp, 'data');
  const c = await startWeft('weft control', ['control', '--data-dir', dataDir, '--api-addr', '127.0.0.1:0', '--xds-addr', '127.0.0.1:0', '--log-level', 'warn'], CONTROL_READY, { home: tmp });
  apiUrl = c.match[1]!;
  xdsAddr = c.match[2]!;
  // Three catalog replicas share one target port on three loopback addresses
  // (an endpoint is address:targetPort).
  const first = await startUpstream('r1', '127.0.0.1', 0);
  catalog = [first, ...(await Promise.all([startUpstream('r2', '127.0.0.2', first.port), startUpstream('r3', '127.0.0.3', first.port)]))];
  [flaky, echo] = await Promise.all([startUpstream('flaky', '127.0.0.1', 0, '503'), startUpstream('echo', '127.0.0.1', 0)]);
  await apply([
    service('catalog', 'catalog', first.port),
    ...catalog.map((u) => workload(`catalog-${u.name}`, 'catalog', u.host, u.port)),
    service('flaky', 'flaky', flaky.port),
    workload('flaky-0', 'flaky', flaky.host, flaky.port),
    service('faulty', 'echo', echo.port),
    service('limited', 'echo', echo.port),
    workload('echo-0', 'echo', echo.host, echo.port),
  ].join('---\n'));
  const w = await startWeft('weft proxy web', [
    'proxy', '--xds', xdsAddr, '--service', 'web', '--namespace', 'default', '--concurrency', '1',
    '--admin-addr', '127.0.0.1:0', '--outbound-addr', '127.0.0.1:0', '--log-level', 'warn',
  ], PROXY_READY, { home: tmp });
  admin = w.match[1]!;
  outbound = w.match[2]!;
  await until('all three catalog replicas answer through the web sidecar', 15_000, async () => {
    const t = tally(await many(30, 6, () => get('http://catalog.default/')), (r) => r.body);
    return t.r1 !== undefined && t.r2 !== undefined && t.r3 !== undefined ? true : undefined;
  });
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

describe('resilience: BackendPolicy from YAML to proxy behaviour', { concurrency: false }, () => {
  step('weft describe service: effective policy per port and per route rule, with its source', async () => {
    await apply([
      // The default retry policy and outlier detection only apply when a policy
      // selects them: `retry: {}` and `outlierDetection: {}` take every default.
      policy('catalog-resilience', '{kind: Service, name: catalog}', '  retry: {}\n  outlierDetection: {}\n'),
      policy('catalog-main-timeouts', '{group: gateway.networking.k8s.io, kind: HTTPRoute, name: catalog, sectionName: main}', '  timeouts: {request: 10s}\n'),
      `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: catalog, namespace: default}
spec:
  parentRefs: [{group: "", kind: Service, name: catalog, port: 80}]
  rules:
  - name: main
    backendRefs: [{name: catalog, port: 80}]
`,
    ].join('---\n'));
    await until('the catalog policy (retry budget, outlier detection) in the web sidecar', 10_000, async () => {
      const d = await configDump();
      return d.includes('retry_budget') && d.includes('outlier_detection') ? true : undefined;
    });
    const out = await weft(['describe', 'service', 'catalog']);
    process.stdout.write(out.slice(out.indexOf('Effective policy:')).replace(/^/gm, '# ') + '\n');
    const lines = out.split('\n').map((l) => l.trim().replace(/ +/g, ' '));
    const at = (title: string): string[] => {
      const i = lines.indexOf(title);
      assert.ok(i >= 0, `no "${title}" in:\n${out}`);
      return lines.slice(i + 1, i + 9);
    };
    const port = at('Port http (80):');
    assert.ok(port.includes('retry: {"attempts":2,"retryOn":["connect-failure","reset","refused-stream","unavailable","cancelled","retriable-status-codes"],"retriableStatusCodes":[503],"backoff":{"baseInterval":"25ms","maxInterval":"250ms"},"budget":{"percent":20,"minRetryConcurrency":5}} from backendpolicy/default/catalog-resilience via targetRefs[0] (Service)'), port.join('\n'));
    assert.ok(port.some((l) => /^outlierDetection: \{"consecutive5xx":5,.*\} from backendpolicy\/default\/catalog-resilience via targetRefs\[0\] \(Service\)$/.test(l)), port.join('\n'));
    assert.ok(port.includes('timeouts: <unset> from default'), port.join('\n'));
    assert.ok(port.includes('loadBalancer: <unset> from default'), port.join('\n'));
    const rule = at('Port http (80), httproute/default/catalog rules[0] (main):');
    assert.ok(rule.includes('timeouts: {"request":"10s"} from backendpolicy/default/catalog-main-timeouts via targetRefs[0] (RouteRule)'), rule.join('\n'));
    assert.ok(rule.some((l) => l.startsWith('retry:') && l.endsWith('from backendpolicy/default/catalog-resilience via targetRefs[0] (Service)')), rule.join('\n'));
  });

  step('(a) 9,000 GETs at 300/s over 30 s, a replica SIGKILLed at ~10 s: zero failures, the killed host ejected within seconds', async () => {
    const total = 9000;
    const rate = 300;
    const killAt = 3000;
    const failures: string[] = [];
    let ok = 0;
    let killedAt = 0;
    let ejectedAfter = -1;
    const victim = catalog[1]!;
    const before0 = await ejections();
    const inflight: Promise<void>[] = [];
    const t0 = Date.now();
    let sent = 0;
    let ejectionWatch: Promise<void> | undefined;
    // Open loop: request i leaves at t0 + i/rate whatever the answers do.
    while (sent < total) {
      const due = Math.min(total, Math.floor(((Date.now() - t0) * rate) / 1000) + 1);
      for (; sent < due; sent++) {
        if (sent === killAt) {
          victim.proc.kill('SIGKILL');
          killedAt = Date.now();
          ejectionWatch = until('the killed replica ejected (weft_outlier_ejections_total)', 10_000, async () => ((await ejections()) > before0 ? Date.now() - killedAt : undefined), 20).then((ms) => {
            ejectedAfter = ms;
          });
        }
        inflight.push(get('http://catalog.default/').then(
          (r) => {
            if (r.status === 200) ok++;
            else failures.push(`${r.status} ${flags(r)}`);
          },
          (e: unknown) => void failures.push(String(e)),
        ));
      }
      await new Promise((r) => setTimeout(r, 5)); // pacing tick of the load generator, not readiness
    }
    await Promise.all(inflight);
    const elapsed = Date.now() - t0;
    await ejectionWatch;
    process.stdout.write(`# kill scenario: ${total} GETs in ${elapsed} ms, ${ok} ok, ${failures.length} failed ${JSON.stringify(failures.slice(0, 5))}; killed replica ejected ${ejectedAfter} ms after SIGKILL (sent #${killAt} at ${killedAt - t0} ms)\n`);
    assert.equal(failures.length, 0, failures.slice(0, 10).join('\n'));
    assert.ok(ejectedAfter >= 0 && ejectedAfter <= 5000, `ejected after ${ejectedAfter} ms`);
    assert.ok(elapsed < 40_000, `load took ${elapsed} ms`);
  });

  step('(b) a backend answering 100% 503: upstream attempts / client requests stays within the retry budget', async () => {
    await apply(policy('flaky-retry', '{kind: Service, name: flaky}', '  retry: {}\n'));
    await until('the flaky retry policy in the web sidecar (one request, more than one attempt)', 10_000, async () => {
      const n = await served(flaky);
      await get('http://flaky.default/');
      return (await served(flaky)) - n > 1 ? true : undefined;
    }, 100);
    // Each attempt takes 200 ms, so that many requests are in flight at once: the
    // budget (20% of active requests) is then about its floor (minRetryConcurrency 5).
    const run = async (n: number, rate: number, ms: number): Promise<{ ratio: number; statuses: Record<string, number> }> => {
      const start = await served(flaky);
      const replies: Promise<Reply>[] = [];
      const t0 = Date.now();
      let sent = 0;
      while (sent < n) {
        const due = Math.min(n, Math.floor(((Date.now() - t0) * rate) / 1000) + 1);
        for (; sent < due; sent++) replies.push(get(`http://flaky.default/?ms=${ms}`));
        await new Promise((r) => setTimeout(r, 5)); // pacing tick
      }
      const rs = await Promise.all(replies);
      const attempts = (await served(flaky)) - start;
      return { ratio: attempts / n, statuses: tally(rs, (r) => `${r.status} ${flags(r)}`) };
    };
    const retryStats = async (): Promise<string> => {
      const text = await (await fetch(`${admin}/metrics`)).text();
      return text.split('\n').filter((l) => /^weft_upstream_rq_retry(_overflow)?_total\{.*flaky/.test(l)).map((l) => l.replace(/\{.*\}/, '')).join(', ');
    };
    const slow = await run(500, 100, 200);
    const afterSlow = await retryStats();
    const fast = await run(500, 100, 0);
    process.stdout.write(`# flaky retry counters (cumulative): after the 200 ms run ${afterSlow}; after the instant run ${await retryStats()}\n`);
    process.stdout.write(`# 100% 503, 500 requests at 100/s: attempts/requests ${slow.ratio.toFixed(3)} with 200 ms answers ${JSON.stringify(slow.statuses)}; ${fast.ratio.toFixed(3)} with instant answers ${JSON.stringify(fast.statuses)}\n`);
    assert.ok(slow.ratio >= 1 && slow.ratio <= 1.5, `ratio ${slow.ratio}`);
    assert.deepEqual(Object.keys(slow.statuses).filter((k) => !k.startsWith('503 ')), [], 'every reply is the upstream 503');
  });

  step('(c) fault injection, abort 50%: ~50% (±10%) of 400 requests get 503 FI', async () => {
    await apply(policy('faulty-abort', '{kind: Service, name: faulty}', '  faultInjection: {abort: {httpStatus: 503, percent: 50}}\n'));
    await until('an injected abort', 10_000, async () => (flags(await get('http://faulty.default/')) === 'FI' ? true : undefined), 50);
    const rs = await many(400, 8, () => get('http://faulty.default/'));
    const t = tally(rs, (r) => `${r.status} ${flags(r)}`.trim());
    const share = (t['503 FI'] ?? 0) / 400;
    process.stdout.write(`# fault abort 50%: ${JSON.stringify(t)} (${(share * 100).toFixed(1)}% aborted)\n`);
    assert.deepEqual(Object.keys(t).sort(), ['200', '503 FI']);
    assert.ok(share >= 0.4 && share <= 0.6, `aborted share ${share}`);
  });

  step('(d) local rate limit: 429 RL with retry-after and x-ratelimit-* headers', async () => {
    const pre = await many(20, 4, () => get('http://limited.default/'));
    assert.deepEqual(tally(pre, (r) => String(r.status)), { 200: 20 });
    await apply(policy('limited-rate', '{kind: Service, name: limited}', '  rateLimit: {requests: 5, per: 1m}\n'));
    const limited = await until('a 429 from the rate limit', 10_000, async () => {
      const r = await get('http://limited.default/');
      return r.status === 429 ? r : undefined;
    }, 20);
    assert.equal(flags(limited), 'RL');
    assert.match(String(limited.headers['retry-after']), /^\d+$/);
    assert.equal(limited.headers['x-ratelimit-limit'] !== undefined, true, JSON.stringify(limited.headers));
    assert.equal(limited.headers['x-ratelimit-remaining'], '0');
    // The bucket (5 per minute) stays empty: every further request is refused.
    const rs = await many(20, 4, () => get('http://limited.default/'));
    assert.deepEqual(tally(rs, (r) => `${r.status} ${flags(r)}`), { '429 RL': 20 });
    // Other services are not limited.
    assert.equal((await get('http://faulty.default/?x=1')).status === 429, false);
  });
});
