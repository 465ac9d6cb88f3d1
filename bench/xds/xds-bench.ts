/**
 * `npm run bench:xds`: Weft's xDS control plane at scale (issue 3).
 *
 * The control plane (xDS server + file store) runs alone in a child process
 * (server-child.ts) on 127.0.0.1; this process drives N simulated Weft proxies
 * (sim-client.ts) against it and measures:
 *   1. time to first full config per proxy, and for all N;
 *   2. convergence of an HTTPRoute change: store write → every proxy ACKed it;
 *   3. endpoint churn: R Workload changes/s for S s, per-change convergence;
 *   4. the control plane's RSS (idle, with N proxies, per proxy) and CPU per phase.
 * Every phase is bounded in time; every process started is stopped.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Resource } from '../../src/api/types.js';
import type { ChildReply, ChildRequest, ChildStats } from './server-child.js';
import { churnChange, httpRoute } from './fixtures.js';
import { newChannel, SimClient } from './sim-client.js';
import { addressPattern, now, resourceName, type LightResponse } from './wire.js';
import { summarize } from './profile-summary.js';
import { CONVERGENCE_BUCKETS } from '../../src/control/xds/ads-server.js';

const HERE = dirname(fileURLToPath(import.meta.url));

interface Options {
  proxies: number;
  services: number;
  endpoints: number;
  churnRate: number;
  duration: number;
  channels: number;
  routeChanges: number;
  debounceMs?: number;
  connectTimeoutS: number;
  settleTimeoutS: number;
  cpuProf: boolean;
  quick: boolean;
  json: boolean;
  /** Simulated proxies speak delta xDS (DeltaAggregatedResources). */
  delta: boolean;
}

const USAGE = `usage: xds-bench [--quick] [--proxies N] [--services M] [--endpoints E]
  [--churn-rate R] [--duration S] [--channels K] [--route-changes T]
  [--debounce-ms D] [--connect-timeout S] [--settle-timeout S] [--cpu-prof] [--delta]`;

function parseArgs(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const o: Options = {
    proxies: quick ? 100 : 1000,
    services: quick ? 50 : 500,
    endpoints: quick ? 500 : 5000,
    churnRate: 50,
    duration: quick ? 5 : 10,
    channels: 0,
    routeChanges: 3,
    connectTimeoutS: quick ? 20 : 180,
    settleTimeoutS: quick ? 10 : 60,
    cpuProf: false,
    quick,
    json: false,
    delta: false,
  };
  const num = (i: number, name: string): number => {
    const v = Number(argv[i + 1]);
    if (!Number.isFinite(v) || v < 0) throw new Error(`${name} needs a non-negative number`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '--quick':
        break;
      case '--proxies': o.proxies = num(i++, a); break;
      case '--services': o.services = num(i++, a); break;
      case '--endpoints': o.endpoints = num(i++, a); break;
      case '--churn-rate': o.churnRate = num(i++, a); break;
      case '--duration': o.duration = num(i++, a); break;
      case '--channels': o.channels = num(i++, a); break;
      case '--route-changes': o.routeChanges = num(i++, a); break;
      case '--debounce-ms': o.debounceMs = num(i++, a); break;
      case '--connect-timeout': o.connectTimeoutS = num(i++, a); break;
      case '--settle-timeout': o.settleTimeoutS = num(i++, a); break;
      case '--cpu-prof': o.cpuProf = true; break;
      case '--delta': o.delta = true; break;
      case '--help':
        console.log(USAGE);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${a}\n${USAGE}`);
    }
  }
  if (o.proxies < 1 || o.proxies > 20_000) throw new Error('--proxies must be 1..20000');
  if (o.services < 2 || o.services > 20_000) throw new Error('--services must be 2..20000');
  if (o.endpoints < o.services || o.endpoints > 200_000) throw new Error('--endpoints must be services..200000');
  if (o.channels === 0 || o.channels > o.proxies) o.channels = o.proxies;
  o.duration = Math.min(o.duration, 600);
  o.routeChanges = Math.min(Math.max(1, Math.floor(o.routeChanges)), 20);
  return o;
}

// ---------------------------------------------------------------- stats helpers

function pct(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

interface Dist {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

function dist(values: number[]): Dist {
  const s = [...values].sort((a, b) => a - b);
  return { n: s.length, p50: round(pct(s, 50)), p99: round(pct(s, 99)), max: round(s[s.length - 1] ?? NaN) };
}

const round = (x: number, d = 1): number => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : x);
const mb = (b: number): number => round(b / 1048576, 1);

/** VmRSS and VmHWM of a process, in bytes, from /proc. */
function procRss(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return undefined;
  }
}

/** utime+stime of a process, in seconds, from /proc/<pid>/stat (USER_HZ = 100 on Linux). */
function procCpu(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

/**
 * The churn phase's part of the server's convergence histogram (after − before):
 * count, mean, and the bucket bounds the 50th and 99th percentiles fall under.
 */
function serverConvergence(before: ChildStats['convergence'], after: ChildStats['convergence']): { count: number; meanMs: number; p50LeMs: number; p99LeMs: number } {
  const counts = after.counts.map((c, i) => c - (before.counts[i] ?? 0));
  const count = after.count - before.count;
  const le = (q: number): number => {
    let acc = 0;
    for (let i = 0; i < counts.length; i++) {
      acc += counts[i] as number;
      if (acc >= q * count) return i < CONVERGENCE_BUCKETS.length ? (CONVERGENCE_BUCKETS[i] as number) * 1000 : Infinity;
    }
    return NaN;
  };
  return { count, meanMs: count > 0 ? round(((after.sum - before.sum) / count) * 1000) : NaN, p50LeMs: le(0.5), p99LeMs: le(0.99) };
}

// ---------------------------------------------------------------- the child

type RequestBody = ChildRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;

class ControlPlane {
  private seq = 0;
  private readonly waiting = new Map<number, { resolve: (m: ChildReply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  onWrote?: (k: number, writeAt: number, doneAt: number) => void;
  exited: Promise<number | null>;
  peakRss = 0;
  private sampler?: NodeJS.Timeout;

  constructor(readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    child.on('message', (m: ChildReply) => {
      if (m.op === 'wrote') {
        this.onWrote?.(m.k, m.writeAt, m.doneAt);
        return;
      }
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      clearTimeout(w.timer);
      if (m.op === 'error') w.reject(new Error(`control plane: ${m.message}`));
      else w.resolve(m);
    });
    void this.exited.then((code) => {
      for (const w of this.waiting.values()) {
        clearTimeout(w.timer);
        w.reject(new Error(`control plane exited (${code})`));
      }
      this.waiting.clear();
    });
    this.sampler = setInterval(() => this.sample(), 200);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  sample(): number {
    const r = procRss(this.pid);
    if (r && r.rss > this.peakRss) this.peakRss = r.rss;
    return r?.rss ?? NaN;
  }

  resetPeak(): void {
    this.peakRss = 0;
    this.sample();
  }

  request<T extends ChildReply['op']>(msg: RequestBody, timeoutMs: number): Promise<Extract<ChildReply, { op: T }>> {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`control plane did not answer ${msg.op} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, { resolve: resolve as (m: ChildReply) => void, reject, timer });
      this.child.send({ ...msg, id });
    });
  }

  async stats(gc = false): Promise<ChildStats> {
    return (await this.request<'stats'>({ op: 'stats', gc }, 30_000)).stats;
  }

  async stop(): Promise<void> {
    if (this.sampler) clearInterval(this.sampler);
    if (this.child.exitCode === null && this.child.signalCode === null) {
      try {
        await this.request<'closed'>({ op: 'close' }, 10_000);
      } catch {
        // fall through to the kill below
      }
      const t = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
      await this.exited;
      clearTimeout(t);
    }
  }
}

// ---------------------------------------------------------------- phases

interface PhaseCost {
  phase: string;
  seconds: number;
  cpCpuS: number;
  cpCpuPct: number;
  cpPeakRssMb: number;
  driverCpuS: number;
  driverLoopP99Ms: number;
}

async function waitFor(cond: () => boolean, timeoutMs: number, everyMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return true;
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  const dir = await mkdtemp(join(tmpdir(), 'weft-bench-xds-'));
  const profDir = join(dir, 'prof');
  const execArgv = ['--expose-gc', ...(o.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [])];
  const child = fork(join(HERE, 'server-child.js'), [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const cp = new ControlPlane(child);
  const channels: ReturnType<typeof newChannel>[] = [];
  const clients: SimClient[] = [];
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const costs: PhaseCost[] = [];
  const errors: string[] = [];
  let interrupted = false;
  const onSig = (): void => {
    interrupted = true;
  };
  process.on('SIGINT', onSig);
  process.on('SIGTERM', onSig);

  let phaseStart = { t: 0, cpu: 0, driver: process.cpuUsage() };
  const beginPhase = (): void => {
    cp.resetPeak();
    loop.reset();
    phaseStart = { t: now(), cpu: procCpu(cp.pid), driver: process.cpuUsage() };
  };
  const endPhase = (phase: string): PhaseCost => {
    cp.sample();
    const seconds = (now() - phaseStart.t) / 1000;
    const cpCpuS = procCpu(cp.pid) - phaseStart.cpu;
    const d = process.cpuUsage(phaseStart.driver);
    const c: PhaseCost = {
      phase,
      seconds: round(seconds, 2),
      cpCpuS: round(cpCpuS, 2),
      cpCpuPct: round((100 * cpCpuS) / Math.max(seconds, 1e-3), 0),
      cpPeakRssMb: mb(cp.peakRss),
      driverCpuS: round((d.user + d.system) / 1e6, 2),
      driverLoopP99Ms: round(loop.percentile(99) / 1e6, 0),
    };
    costs.push(c);
    return c;
  };

  const result: Record<string, unknown> = {};
  try {
    // ------------------------------------------------ start + idle
    const ready = await cp.request<'ready'>({ op: 'init', dir: join(dir, 'store'), services: o.services, endpoints: o.endpoints, ...(o.debounceMs !== undefined ? { debounceMs: o.debounceMs } : {}) }, 120_000);
    const idle = await cp.stats(true);
    const idleProc = procRss(cp.pid);
    log(`control plane pid ${cp.pid} at ${ready.address}: seeded ${o.services} services + ${o.endpoints} workloads in ${round(ready.seedMs, 0)} ms; idle RSS ${mb(idle.rss)} MB (heap ${mb(idle.heapUsed)} MB)`);

    // ------------------------------------------------ 1. first full config
    let full = 0;
    const rdsWatch = { marker: '', pattern: Buffer.alloc(0), seenAt: new Float64Array(o.proxies) };
    const churn = { patterns: [] as Buffer[], clusters: [] as string[], byCluster: new Map<string, number[]>(), writeAt: new Float64Array(0), announced: 0 };
    const events = {
      onFullConfig: (): void => {
        full++;
      },
      onError: (c: SimClient, err: string): void => {
        if (errors.length < 20) errors.push(`proxy ${c.id}: ${err}`);
      },
      onRds: (c: SimClient, r: LightResponse, ackAt: number): void => {
        if (rdsWatch.marker !== '' && rdsWatch.seenAt[c.id] === 0 && r.raw.indexOf(rdsWatch.pattern) >= 0) rdsWatch.seenAt[c.id] = ackAt;
      },
      onEds: (c: SimClient, r: LightResponse, ackAt: number): void => {
        if (c.churnLow >= churn.patterns.length) return;
        // Every pending change of the clusters in this response, announced or not: EDS
        // responses carry only the ClusterLoadAssignments that changed, so one that
        // arrives before the store write's acknowledgement reaches this process is
        // not sent again.
        for (const res of r.resources) {
          const ks = churn.byCluster.get(resourceName(res));
          if (ks === undefined) continue;
          for (const k of ks) if (c.churnSeenAt[k] === 0 && res.indexOf(churn.patterns[k] as Buffer) >= 0) c.churnSeenAt[k] = ackAt;
        }
        while (c.churnLow < churn.patterns.length && c.churnSeenAt[c.churnLow] !== 0) c.churnLow++;
      },
    };
    for (let i = 0; i < o.channels; i++) channels.push(newChannel(ready.address));
    beginPhase();
    const t0 = now();
    for (let i = 0; i < o.proxies; i++) {
      const c = new SimClient(i, channels[i % o.channels] as ReturnType<typeof newChannel>, events, o.delta);
      clients.push(c);
      c.start();
    }
    const allFull = await waitFor(() => full === o.proxies || interrupted, o.connectTimeoutS * 1000, 50);
    const tAll = now() - t0;
    const ttfc = clients.filter((c) => c.fullAt > 0).map((c) => c.fullAt - c.startedAt);
    const cost1 = endPhase('1 connect');
    const first = dist(ttfc);
    result.firstConfig = { ...first, allMs: allFull ? round(tAll, 0) : null, complete: full, of: o.proxies };
    const mbReceived = clients.reduce((a, c) => a + c.bytes, 0) / 1048576;
    log(`1. first full config: ${full}/${o.proxies} proxies; p50 ${first.p50} ms, p99 ${first.p99} ms, max ${first.max} ms; all in ${allFull ? `${round(tAll, 0)} ms` : `NOT within ${o.connectTimeoutS} s`}; ${round(mbReceived, 0)} MB received (cp CPU ${cost1.cpCpuS} s)`);
    if (!allFull) throw new Error(`only ${full}/${o.proxies} proxies got a full config within ${o.connectTimeoutS} s`);

    // ------------------------------------------------ memory with N proxies
    await new Promise((r) => setTimeout(r, 1000));
    const withClients = await cp.stats(true);
    const perProxyKb = (withClients.rss - idle.rss) / o.proxies / 1024;
    result.memory = {
      idleRssMb: mb(idle.rss),
      withProxiesRssMb: mb(withClients.rss),
      perProxyKb: round(perProxyKb, 0),
      idleHeapMb: mb(idle.heapUsed),
      withProxiesHeapMb: mb(withClients.heapUsed),
      perProxyHeapKb: round((withClients.heapUsed - idle.heapUsed) / o.proxies / 1024, 0),
      streams: withClients.streams,
      peakRssMb: mb(idleProc ? (procRss(cp.pid)?.hwm ?? NaN) : NaN),
    };
    log(`   RSS idle ${mb(idle.rss)} MB → ${mb(withClients.rss)} MB with ${withClients.streams} streams (after GC): ${round(perProxyKb, 0)} KB per proxy; heap ${mb(idle.heapUsed)} → ${mb(withClients.heapUsed)} MB`);

    // ------------------------------------------------ 2. HTTPRoute change
    const trials: (Dist & { complete: number; writeMs: number })[] = [];
    beginPhase();
    for (let t = 0; t < o.routeChanges && !interrupted; t++) {
      rdsWatch.marker = `bench-${process.pid}-${t}-${Math.floor(now())}`;
      rdsWatch.pattern = Buffer.from(rdsWatch.marker);
      rdsWatch.seenAt.fill(0);
      const put = await cp.request<'put'>({ op: 'put', resource: httpRoute(rdsWatch.marker, o.services) as Resource }, 30_000);
      const live = clients.filter((c) => !c.ended);
      await waitFor(() => live.every((c) => rdsWatch.seenAt[c.id] !== 0) || interrupted, o.settleTimeoutS * 1000);
      const conv = live.filter((c) => rdsWatch.seenAt[c.id] !== 0).map((c) => (rdsWatch.seenAt[c.id] as number) - put.writeAt);
      const d = dist(conv);
      trials.push({ ...d, complete: conv.length, writeMs: round(put.doneAt - put.writeAt, 1) });
      log(`2. HTTPRoute change ${t + 1}/${o.routeChanges}: ${conv.length}/${live.length} proxies ACKed; p50 ${d.p50} ms, p99 ${d.p99} ms, max ${d.max} ms (store write ${round(put.doneAt - put.writeAt, 1)} ms)`);
      await new Promise((r) => setTimeout(r, 500));
    }
    const cost2 = endPhase('2 route change');
    const worst = trials.reduce((a, b) => (b.p99 > a.p99 || !Number.isFinite(a.p99) ? b : a), trials[0] as (typeof trials)[number]);
    result.routeConvergence = { trials, worstP99Ms: worst?.p99, worstMaxMs: Math.max(...trials.map((x) => x.max)) };
    void cost2;

    // ------------------------------------------------ 3. endpoint churn
    const nChanges = Math.min(Math.floor(o.churnRate * o.duration), o.endpoints, 100_000);
    let churnResult: Record<string, unknown> = { changes: 0 };
    const convergenceBefore = nChanges > 0 && !interrupted ? (await cp.stats(false)).convergence : undefined;
    if (nChanges > 0 && !interrupted) {
      const changes: Resource[] = [];
      for (let k = 0; k < nChanges; k++) {
        const ch = churnChange(k, o.services, o.endpoints);
        changes.push(ch.resource);
        churn.patterns.push(addressPattern(ch.address));
        churn.clusters.push(ch.cluster);
        const ks = churn.byCluster.get(ch.cluster) ?? [];
        ks.push(k);
        churn.byCluster.set(ch.cluster, ks);
      }
      churn.writeAt = new Float64Array(nChanges);
      for (const c of clients) {
        c.churnSeenAt = new Float64Array(nChanges);
        c.churnLow = 0;
      }
      cp.onWrote = (k, writeAt) => {
        churn.writeAt[k] = writeAt;
        // Announce in order (writes are issued in order; their acknowledgements may not be).
        while (churn.announced < nChanges && churn.writeAt[churn.announced] !== 0) churn.announced++;
      };
      beginPhase();
      // The writer in the child gives up at 2x the duration + 5 s; allow for that and the IPC.
      const cd = await cp.request<'churn-done'>({ op: 'churn', changes, ratePerSec: o.churnRate }, (2 * o.duration + 30) * 1000).catch((err: Error) => {
        errors.push(err.message);
        return undefined;
      });
      const written = cd?.written ?? churn.announced;
      const live = clients.filter((c) => !c.ended);
      const converged = await waitFor(() => live.every((c) => c.churnLow >= written) || interrupted, o.settleTimeoutS * 1000, 50);
      if (written < nChanges) log(`   the control plane's event loop issued only ${written}/${nChanges} churn writes in time`);
      const cost3 = endPhase('3 churn');
      const perChange: number[] = [];
      const pairs: number[] = [];
      let unconverged = 0;
      for (let k = 0; k < written; k++) {
        let worstK = 0;
        let all = true;
        for (const c of live) {
          const s = c.churnSeenAt[k] as number;
          if (s === 0) {
            all = false;
            continue;
          }
          const d = s - (churn.writeAt[k] as number);
          pairs.push(d);
          if (d > worstK) worstK = d;
        }
        if (all) perChange.push(worstK);
        else unconverged++;
      }
      const pc = dist(perChange);
      const pp = dist(pairs);
      churnResult = {
        changes: nChanges,
        written,
        ratePerSec: o.churnRate,
        perChangeAllProxies: pc,
        perProxy: pp,
        unconvergedChanges: unconverged,
        settledWithin: converged ? null : `${o.settleTimeoutS}s`,
        writerMaxLagMs: cd ? round(cd.maxLagMs, 0) : null,
        storeMaxPutMs: cd ? round(cd.maxPutMs, 0) : null,
      };
      if (convergenceBefore !== undefined) {
        // The server's view (rebuild batch's first change → its ACK), bucketed, so percentiles are bucket upper bounds.
        const after = (await cp.stats(false)).convergence;
        const server = serverConvergence(convergenceBefore, after);
        churnResult.serverConvergence = server;
        log(`   server-side (weft_control_xds_convergence_seconds, churn only): ${server.count} proxy convergences, mean ${server.meanMs} ms, p50 ≤ ${server.p50LeMs} ms, p99 ≤ ${server.p99LeMs} ms`);
      }
      log(`3. churn: ${written}/${nChanges} Workload changes written at ${o.churnRate}/s; per change (until all proxies ACKed) p50 ${pc.p50} ms, p99 ${pc.p99} ms, max ${pc.max} ms; per proxy p50 ${pp.p50} ms, p99 ${pp.p99} ms; ${unconverged} changes not everywhere within ${o.settleTimeoutS} s after the last write (cp CPU ${cost3.cpCpuS} s)`);
    }
    result.churn = churnResult;
    const final = await cp.stats(false);
    result.controlPlane = { pushes: final.pushes, nacks: final.nacks, stale: final.stale, builds: final.builds, streams: final.streams };
  } catch (err) {
    process.exitCode = 1;
    result.error = (err as Error).message;
    console.error(`xds-bench: ${(err as Error).message}`);
  } finally {
    for (const c of clients) c.close();
    for (const ch of channels) ch.close();
    const hwm = procRss(cp.pid)?.hwm;
    await cp.stop();
    loop.disable();
    process.off('SIGINT', onSig);
    process.off('SIGTERM', onSig);
    if (hwm !== undefined) result.cpPeakRssMb = mb(hwm);
    if (o.cpuProf) {
      try {
        const files = (await readdir(profDir)).filter((f) => f.endsWith('.cpuprofile'));
        for (const f of files) {
          const s = summarize(join(profDir, f), 15);
          result.profile = { busyMs: s.total, byFile: s.byFile.slice(0, 10), byFunction: s.byFunction };
          log(`\ncontrol-plane CPU profile (${s.total} ms busy), self time by file/package:`);
          for (const r of s.byFile.slice(0, 12)) log(`  ${String(r.ms).padStart(7)} ms ${String(r.pct).padStart(5)}%  ${r.name}`);
          log('self time by function:');
          for (const r of s.byFunction) log(`  ${String(r.ms).padStart(7)} ms ${String(r.pct).padStart(5)}%  ${r.name}`);
        }
      } catch (err) {
        log(`no CPU profile: ${(err as Error).message}`);
      }
    }
    await rm(dir, { recursive: true, force: true });
  }

  // ------------------------------------------------ report
  result.phases = costs;
  result.errors = errors;
  result.params = { delta: o.delta, proxies: o.proxies, services: o.services, endpoints: o.endpoints, channels: o.channels, churnRate: o.churnRate, duration: o.duration, debounceMs: o.debounceMs ?? 100 };
  result.machine = { node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model };
  printTable(result, costs);
  const rc = result.routeConvergence as { worstP99Ms?: number } | undefined;
  const mem = result.memory as { perProxyKb?: number } | undefined;
  result.targets = {
    p99ConvergenceLe1s: rc?.worstP99Ms !== undefined ? rc.worstP99Ms <= 1000 : null,
    churnP99Le1s: (() => {
      const c = result.churn as { perChangeAllProxies?: Dist; unconvergedChanges?: number } | undefined;
      return c?.perChangeAllProxies ? c.perChangeAllProxies.p99 <= 1000 && c.unconvergedChanges === 0 : null;
    })(),
    memLe1MbPerProxy: mem?.perProxyKb !== undefined ? mem.perProxyKb <= 1024 : null,
  };
  console.log(`XDS_BENCH_JSON ${JSON.stringify(result)}`);
  if (errors.length > 0) console.error(`errors: ${errors.slice(0, 5).join('; ')}`);
  return process.exitCode === 1 ? 1 : 0;
}

function log(s: string): void {
  console.log(s);
}

function printTable(r: Record<string, unknown>, costs: PhaseCost[]): void {
  const rows: [string, string][] = [];
  const f = r.firstConfig as (Dist & { allMs: number | null; complete: number; of: number }) | undefined;
  if (f) rows.push(['first full config / proxy (p50 / p99 / max)', `${f.p50} / ${f.p99} / ${f.max} ms`], ['all proxies configured', f.allMs === null ? `no (${f.complete}/${f.of})` : `${f.allMs} ms`]);
  const rc = r.routeConvergence as { trials: (Dist & { complete: number })[] } | undefined;
  if (rc) rc.trials.forEach((t, i) => rows.push([`HTTPRoute change #${i + 1} → all ACKed (p50 / p99 / max)`, `${t.p50} / ${t.p99} / ${t.max} ms (${t.complete} proxies)`]));
  const c = r.churn as { changes: number; written?: number; ratePerSec?: number; perChangeAllProxies?: Dist; perProxy?: Dist; unconvergedChanges?: number } | undefined;
  if (c?.perChangeAllProxies && c.perProxy) {
    rows.push([`churn ${c.written ?? c.changes}/${c.changes} changes @${c.ratePerSec}/s, per change, all proxies (p50 / p99 / max)`, `${c.perChangeAllProxies.p50} / ${c.perChangeAllProxies.p99} / ${c.perChangeAllProxies.max} ms`]);
    rows.push(['churn, per (change, proxy) (p50 / p99 / max)', `${c.perProxy.p50} / ${c.perProxy.p99} / ${c.perProxy.max} ms`]);
    rows.push(['churn changes not converged in time', String(c.unconvergedChanges)]);
  }
  const m = r.memory as { idleRssMb: number; withProxiesRssMb: number; perProxyKb: number } | undefined;
  if (m) rows.push(['control-plane RSS idle → with proxies (after GC)', `${m.idleRssMb} → ${m.withProxiesRssMb} MB`], ['RSS per connected proxy', `${m.perProxyKb} KB`]);
  if (r.cpPeakRssMb !== undefined) rows.push(['control-plane peak RSS (VmHWM)', `${r.cpPeakRssMb} MB`]);
  const w = Math.max(...rows.map((x) => x[0].length));
  console.log('');
  for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
  console.log('');
  console.log('phase            wall s   cp CPU s  cp CPU %  cp peak RSS MB  driver CPU s  driver loop p99 ms');
  for (const p of costs) {
    console.log(`${p.phase.padEnd(15)} ${String(p.seconds).padStart(7)} ${String(p.cpCpuS).padStart(10)} ${String(p.cpCpuPct).padStart(9)} ${String(p.cpPeakRssMb).padStart(15)} ${String(p.driverCpuS).padStart(13)} ${String(p.driverLoopP99Ms).padStart(19)}`);
  }
  console.log('');
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
