// Issue 5's reliability scenario, scaled to CI: three upstream replicas (real child
// processes), one SIGKILLed in the middle of steady load at a bounded rate. With the
// control plane's default retry policy (+ `reset`, see below) and outlier detection the
// client sees no failed GET, and the killed replica is ejected within seconds.
// (The figure is 30 s at 300 req/s; here 3 s at 150 req/s keeps the suite fast.)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { call, keepAliveAgent, listener, routeConfig, staticCluster, waitFor } from '../fixtures/proxy/helpers.js';

const REPLICA = `
const http = require('node:http');
const s = http.createServer((req, res) => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end(process.argv[1] ?? 'r'); });
s.keepAliveTimeout = 60000;
s.listen(0, '127.0.0.1', () => process.stdout.write(String(s.address().port) + '\\n'));
`;

interface Replica { proc: ChildProcess; port: number }

async function startReplica(name: string): Promise<Replica> {
  const proc = spawn(process.execPath, ['-e', REPLICA, name], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [chunk] = await once(proc.stdout!, 'data') as [Buffer];
  return { proc, port: Number(chunk.toString().trim()) };
}

let replicas: Replica[] = [];
let proxy: Proxy;
let port: number;
const failures: string[] = [];

before(async () => {
  replicas = await Promise.all(['r1', 'r2', 'r3'].map(startReplica));
  // What the control plane emits for the default BackendPolicy retry and outlier detection,
  // plus `reset`: without it a GET in flight on the replica at the moment it dies fails
  // with UC (measured: 0–1 of 450 per run), in Envoy as here. POST/PATCH stay excluded.
  const retryPolicy = {
    retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes,reset',
    num_retries: { value: 2 },
    retry_back_off: { base_interval: { seconds: 0, nanos: 25_000_000 }, max_interval: { seconds: 0, nanos: 250_000_000 } },
    retriable_status_codes: [503],
    retriable_request_headers: [{ name: ':method', string_match: { safe_regex: { google_re2: {}, regex: 'POST|PATCH' } }, invert_match: true }],
  };
  proxy = await startProxy({
    adminAddr: '127.0.0.1:0',
    logLevel: 'silent',
    onAccessLog: (e) => { if (e.status !== 200) failures.push(`${e.status} ${e.flag ?? '-'} ${e.upstreamHost ?? ''}`); },
    bootstrap: { static_resources: {
      listeners: [listener('out', { route_config: routeConfig('r', [{ name: 'svc', domains: ['svc'], routes: [{ match: { prefix: '/' }, route: { cluster: 'replicas', retry_policy: retryPolicy } }] }]) })],
      clusters: [staticCluster('replicas', replicas.map((r) => r.port), {
        circuit_breakers: { thresholds: [{ priority: 'DEFAULT', retry_budget: { budget_percent: { value: 20 }, min_retry_concurrency: { value: 3 } } }] },
        outlier_detection: { consecutive_5xx: { value: 5 }, interval: { seconds: 10 }, base_ejection_time: { seconds: 30 }, max_ejection_percent: { value: 10 }, enforcing_success_rate: { value: 0 } },
      })],
    } },
  });
  port = proxy.listenerPort('out')!;
});

after(async () => {
  await proxy?.close();
  for (const r of replicas) r.proc.kill('SIGKILL');
});

describe('a replica killed under load', () => {
  test('no failed GET; the killed replica is ejected within seconds', async () => {
    const rate = 150; const seconds = 3;
    const total = rate * seconds;
    const statuses = new Map<number, number>();
    let killedAt = 0;
    const inflight: Promise<void>[] = [];
    const c = proxy.snapshot().clusters.get('replicas')!;
    const key = `127.0.0.1:${replicas[0]!.port}`;
    let ejectedAt = 0;
    const poll = setInterval(() => { if (ejectedAt === 0 && c.resilience.health.isEjected(key)) ejectedAt = performance.now(); }, 5);
    const t0 = performance.now();
    for (let i = 0; i < total; i++) {
      // Bounded rate: request i leaves at t0 + i/rate.
      const due = t0 + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (i === Math.floor(total / 3)) { replicas[0]!.proc.kill('SIGKILL'); killedAt = performance.now(); }
      inflight.push(call(port, '/', { headers: { host: 'svc' }, agent: keepAliveAgent }).then(
        (r) => { statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1); },
        () => { statuses.set(0, (statuses.get(0) ?? 0) + 1); },
      ));
    }
    await Promise.all(inflight);
    await waitFor('killed replica ejected', () => ejectedAt > 0, 5000);
    clearInterval(poll);
    const ejectedWithin = ejectedAt - killedAt;
    const failed = total - (statuses.get(200) ?? 0);
    console.log(`# ${total} GETs at ${rate}/s, replica killed after ${total / 3}: ${JSON.stringify(Object.fromEntries(statuses))}; retries ${c.stats.upstreamRqRetry}, retry overflow ${c.stats.upstreamRqRetryOverflow}; ejected ≤ ${Math.round(ejectedWithin)} ms after the kill`);
    assert.equal(failed, 0, `failed GETs: ${JSON.stringify(Object.fromEntries(statuses))} ${failures.join('; ')}`);
    assert.ok(ejectedWithin < 2000, `ejected ${Math.round(ejectedWithin)} ms after the kill`);
  });
});
