/**
 * `npm run bench:ha [-- --quick] [--proxies N] [--services S] [--endpoints E] [--route-changes T]`
 *
 * Two control-plane replicas on one real etcd, N simulated proxies split over them:
 *
 * 1. A real 1-member etcd on 127.0.0.1 (test/helpers/etcd.ts), seeded with S
 *    Services, E Workloads and an HTTPRoute (bench/xds/fixtures.ts).
 * 2. Two `weft control --store etcd://...` child processes (A, B), distinct
 *    data dirs, port 0, the same supplied CA files.
 * 3. N simulated proxies (bench/xds/sim-client.ts), even ids on A, odd on B,
 *    one TCP connection each; all reach a full config.
 * 4. Route change: the HTTPRoute is rewritten through A's HTTP API (POST
 *    /apply); time from the request to each proxy's ACK of the RDS response
 *    holding the new marker, split by replica.
 * 5. Failover: A is SIGKILLed. Each of its proxies, when its stream fails,
 *    reconnects to B after a uniformly random 0–1 s delay (the failover a
 *    proxy with both addresses makes) and subscribes again from scratch.
 *    Measured: time from the kill until each is fully configured (every
 *    response ACKed) on B; and how many responses B sent during that time,
 *    to the moved proxies and to the ones already on it (a push storm would
 *    show as responses to proxies whose config did not change).
 *
 * Bounded: every wait has a deadline; etcd and both replicas are stopped in
 * `finally`, and on SIGINT/SIGTERM. Only 127.0.0.1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Resource } from '../../src/api/types.js';
import { ApiClient } from '../../src/cli/client.js';
import { generateRoot } from '../../src/control/ca/root.js';
import { createLogger } from '../../src/lib/log.js';
import { openEtcdStore } from '../../src/store/etcd/etcd-store.js';
import { startEtcdCluster, etcdSkipReason, type EtcdCluster } from '../../test/helpers/etcd.js';
import { httpRoute, seed } from '../xds/fixtures.js';
import { newChannel, SimClient, type SimEvents } from '../xds/sim-client.js';
import { now, type LightResponse } from '../xds/wire.js';

const HERE = dirname(fileURLToPath(import.meta.url));
/** dist/bench/ha → the repository root. */
const ROOT = resolve(HERE, '../../..');
const CLI = join(ROOT, 'dist/src/cli/main.js');
const PREFIX = '/weft-bench-ha/';
const READY = /^weft control ready: api=(\S+) xds=(\S+) data=(\S+)$/;

interface Options {
  proxies: number;
  services: number;
  endpoints: number;
  routeChanges: number;
  /** Upper bound of the reconnect delay (uniform 0..max). */
  backoffMaxMs: number;
  timeoutS: number;
}

function parseArgs(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const o: Options = { proxies: quick ? 100 : 1000, services: quick ? 20 : 50, endpoints: quick ? 100 : 500, routeChanges: 3, backoffMaxMs: 1000, timeoutS: 120 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const n = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v < 0) throw new Error(`${a} wants a number`);
      return v;
    };
    switch (a) {
      case '--quick': break;
      case '--proxies': o.proxies = n(); break;
      case '--services': o.services = n(); break;
      case '--endpoints': o.endpoints = n(); break;
      case '--route-changes': o.routeChanges = n(); break;
      case '--backoff-max-ms': o.backoffMaxMs = n(); break;
      case '--timeout-s': o.timeoutS = n(); break;
      default: throw new Error(`unknown option ${a}`);
    }
  }
  if (o.proxies < 2 || o.proxies > 20_000) throw new Error('--proxies must be 2..20000');
  if (o.services < 2) throw new Error('--services must be at least 2');
  return o;
}

interface Dist { n: number; p50: number; p99: number; max: number }
function dist(values: number[]): Dist {
  const s = [...values].sort((x, y) => x - y);
  const at = (p: number): number => (s.length === 0 ? NaN : Math.round(s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!));
  return { n: s.length, p50: at(50), p99: at(99), max: s.length === 0 ? NaN : Math.round(s[s.length - 1]!) };
}
const fmt = (d: Dist): string => `n=${d.n} p50 ${d.p50} ms, p99 ${d.p99} ms, max ${d.max} ms`;

async function waitFor(cond: () => boolean, timeoutMs: number, everyMs = 20): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return true;
}

interface Replica { name: string; proc: ChildProcess; api: string; xds: string; dataDir: string; stderr: string[] }

const children = new Set<ChildProcess>();

function startReplica(name: string, dir: string, endpoints: string[], caArgs: string[]): Promise<Replica> {
  const dataDir = join(dir, name);
  const store = `etcd://${endpoints.map((u) => new URL(u).host).join(',')}`;
  const proc = spawn(process.execPath, [CLI, 'control', '--data-dir', dataDir, '--api-addr', '127.0.0.1:0', '--xds-addr', '127.0.0.1:0',
    '--store', store, '--store-prefix', PREFIX, '--log-level', 'warn', ...caArgs], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: dir } });
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  const stderr: string[] = [];
  proc.stderr?.setEncoding('utf8').on('data', (c: string) => {
    if (stderr.length < 200) stderr.push(c);
  });
  return new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error(`replica ${name} not ready in 30 s: ${stderr.join('')}`)), 30_000);
    proc.once('exit', (code) => {
      clearTimeout(t);
      rej(new Error(`replica ${name} exited (${code}) before ready: ${stderr.join('')}`));
    });
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      const m = READY.exec(line);
      if (m) {
        clearTimeout(t);
        res({ name, proc, api: m[1]!, xds: m[2]!, dataDir, stderr });
      }
    });
  });
}

async function stopChild(p: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill(signal);
  const t = setTimeout(() => p.kill('SIGKILL'), 5_000);
  await gone;
  clearTimeout(t);
}

function log(s: string): void {
  process.stdout.write(`${s}\n`);
}

/** One simulated proxy: its current SimClient, the replica it is on, and failover bookkeeping. */
interface Proxy {
  id: number;
  on: 'A' | 'B';
  client: SimClient;
  /** The replica it started on. */
  home: 'A' | 'B';
  /** When its stream to A was seen failing (after the kill). */
  errorAt: number;
  reconnectAt: number;
  fullOnBAt: number;
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  const skip = etcdSkipReason();
  if (skip !== undefined) {
    log(`bench:ha skipped: ${skip}`);
    return 0;
  }
  const dir = await mkdtemp(join(tmpdir(), 'weft-bench-ha-'));
  let cluster: EtcdCluster | undefined;
  const channels: ReturnType<typeof newChannel>[] = [];
  const proxies: Proxy[] = [];
  let interrupted = false;
  const onSig = (): void => {
    interrupted = true;
  };
  process.on('SIGINT', onSig);
  process.on('SIGTERM', onSig);
  const errors: string[] = [];
  try {
    log(`bench:ha — ${o.proxies} proxies over 2 replicas; ${o.services} services, ${o.endpoints} workloads; node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'})`);
    cluster = await startEtcdCluster({ members: 1, dataDir: join(dir, 'etcd') });
    const seedStore = await openEtcdStore({ endpoints: cluster.endpoints, prefix: PREFIX, logger: createLogger('bench-ha', 'silent') });
    const t0 = now();
    const docs = seed(o.services, o.endpoints);
    for (let i = 0; i < docs.length; i += 100) await seedStore.putMany(docs.slice(i, i + 100));
    await seedStore.close();
    log(`etcd ${cluster.endpoints.join(',')}: seeded ${docs.length} objects in ${Math.round(now() - t0)} ms`);

    const root = await generateRoot('cluster.local', 1, Date.now(), 7 * 86_400_000);
    await writeFile(join(dir, 'ca-cert.pem'), root.certPem);
    await writeFile(join(dir, 'ca-key.pem'), root.keyPem, { mode: 0o600 });
    const caArgs = ['--ca-cert', join(dir, 'ca-cert.pem'), '--ca-key', join(dir, 'ca-key.pem')];
    const a = await startReplica('a', dir, cluster.endpoints, caArgs);
    const b = await startReplica('b', dir, cluster.endpoints, caArgs);
    log(`replica A pid ${a.proc.pid} api ${a.api} xds ${a.xds}; replica B pid ${b.proc.pid} api ${b.api} xds ${b.xds}`);
    const adminToken = (await readFile(join(a.dataDir, 'admin-token'), 'utf8')).trim();
    const apiA = new ApiClient({ server: a.api, token: { token: adminToken, origin: 'bench' } });

    // ------------------------------------------------ connect
    let full = 0;
    const watch = { pattern: Buffer.alloc(0), seenAt: new Float64Array(o.proxies) };
    /** Failover in progress; proxies of A fully configured on B so far. */
    const failover = { active: false, movedFull: 0 };
    const byId = (c: SimClient): Proxy => proxies[c.id]!;
    const events: SimEvents = {
      onFullConfig: (c) => {
        const p = byId(c);
        if (p.client !== c) return;
        if (failover.active && p.home === 'A') {
          p.fullOnBAt = c.fullAt;
          failover.movedFull++;
        } else full++;
      },
      onError: (c, err) => {
        const p = byId(c);
        if (p.client !== c) return;
        if (p.on === 'A' && failover.active) {
          // The stream to A broke: to B after a jittered delay, subscribing from scratch.
          p.on = 'B';
          p.errorAt = now();
          const delay = Math.random() * o.backoffMaxMs;
          setTimeout(() => {
            if (interrupted) return;
            p.reconnectAt = now();
            p.client = new SimClient(p.id, channels[p.id]!, events);
            p.client.start();
          }, delay).unref();
          channels[p.id]!.close();
          channels[p.id] = newChannel(b.xds);
          return;
        }
        if (errors.length < 20) errors.push(`proxy ${c.id} on ${p.on}: ${err}`);
      },
      onRds: (c, r: LightResponse, ackAt) => {
        if (watch.pattern.length > 0 && watch.seenAt[c.id] === 0 && r.raw.indexOf(watch.pattern) >= 0) watch.seenAt[c.id] = ackAt;
      },
    };
    const tc = now();
    for (let i = 0; i < o.proxies; i++) {
      const on = i % 2 === 0 ? 'A' : 'B';
      channels.push(newChannel(on === 'A' ? a.xds : b.xds));
      const client = new SimClient(i, channels[i]!, events);
      proxies.push({ id: i, on, home: on, client, errorAt: 0, reconnectAt: 0, fullOnBAt: 0 });
      client.start();
    }
    if (!(await waitFor(() => full === o.proxies || interrupted, o.timeoutS * 1000, 50))) throw new Error(`only ${full}/${o.proxies} proxies got a full config within ${o.timeoutS} s; ${errors.join('; ')}`);
    log(`connect: ${o.proxies} proxies fully configured in ${Math.round(now() - tc)} ms (${o.proxies / 2} on A, ${o.proxies / 2} on B)`);
    await new Promise((r) => setTimeout(r, 1000));

    // ------------------------------------------------ route change through A
    const trials: { all: Dist; onA: Dist; onB: Dist; applyMs: number; complete: number }[] = [];
    for (let t = 0; t < o.routeChanges && !interrupted; t++) {
      const marker = `ha-${process.pid}-${t}-${Math.floor(now())}`;
      watch.pattern = Buffer.from(marker);
      watch.seenAt.fill(0);
      const at = now();
      await apiA.apply(httpRoute(marker, o.services) as Resource);
      const applyMs = now() - at;
      await waitFor(() => proxies.every((p) => watch.seenAt[p.id] !== 0) || interrupted, 30_000);
      const lat = (home: 'A' | 'B' | undefined): number[] => proxies.filter((p) => (home === undefined || p.home === home) && watch.seenAt[p.id] !== 0).map((p) => watch.seenAt[p.id]! - at);
      const trial = { all: dist(lat(undefined)), onA: dist(lat('A')), onB: dist(lat('B')), applyMs: Math.round(applyMs), complete: lat(undefined).length };
      trials.push(trial);
      log(`route change ${t + 1}/${o.routeChanges} via A (apply ${trial.applyMs} ms): ${trial.complete}/${o.proxies} ACKed; all ${fmt(trial.all)}; on A ${fmt(trial.onA)}; on B ${fmt(trial.onB)}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    watch.pattern = Buffer.alloc(0);

    // ------------------------------------------------ failover: kill A
    const moved = proxies.filter((p) => p.home === 'A');
    const stayed = proxies.filter((p) => p.home === 'B');
    const before = new Map(proxies.map((p) => [p.id, p.client.responses]));
    failover.active = true;
    const tKill = now();
    a.proc.kill('SIGKILL');
    const allMoved = await waitFor(() => failover.movedFull === moved.length || interrupted, o.timeoutS * 1000, 20);
    const tAll = now() - tKill;
    // A little longer, to catch late pushes to proxies that stayed.
    await new Promise((r) => setTimeout(r, 2000));
    failover.active = false;
    const toMoved = moved.reduce((s, p) => s + p.client.responses, 0);
    const toStayed = stayed.reduce((s, p) => s + p.client.responses - (before.get(p.id) ?? 0), 0);
    const recovered = moved.filter((p) => p.fullOnBAt > 0);
    const sinceKill = dist(recovered.map((p) => p.fullOnBAt - tKill));
    const detect = dist(recovered.map((p) => p.errorAt - tKill));
    const sinceReconnect = dist(recovered.map((p) => p.fullOnBAt - p.reconnectAt));
    const bytesToMoved = moved.reduce((s, p) => s + p.client.bytes, 0);
    log(`failover: A killed with ${moved.length} proxies on it; ${recovered.length}/${moved.length} fully configured on B ${allMoved ? `within ${Math.round(tAll)} ms` : `NOT within ${o.timeoutS} s`}`);
    log(`  kill → full config on B: ${fmt(sinceKill)}`);
    log(`  kill → stream error seen by the proxy: ${fmt(detect)}`);
    log(`  reconnect → full config on B (B's own work): ${fmt(sinceReconnect)}`);
    log(`  B sent ${toMoved} responses to the ${moved.length} moved proxies (${(toMoved / Math.max(1, moved.length)).toFixed(1)} each: one per type + EDS/RDS follow-ups; ${(bytesToMoved / 1048576).toFixed(1)} MB) and ${toStayed} to the ${stayed.length} proxies already on it`);
    if (errors.length > 0) log(`errors: ${errors.join('; ')}`);
    const summary = {
      proxies: o.proxies, services: o.services, endpoints: o.endpoints,
      routeChange: trials,
      failover: { moved: moved.length, recovered: recovered.length, allMs: allMoved ? Math.round(tAll) : null, sinceKill, detect, sinceReconnect, responsesToMoved: toMoved, responsesToStayed: toStayed },
    };
    log(`RESULT ${JSON.stringify(summary)}`);
    return allMoved && trials.every((t) => t.complete === o.proxies) ? 0 : 1;
  } finally {
    for (const p of proxies) p.client.close();
    for (const c of channels) c.close();
    await Promise.all([...children].map((p) => stopChild(p)));
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
    process.off('SIGINT', onSig);
    process.off('SIGTERM', onSig);
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench:ha failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exit(1);
  },
);
