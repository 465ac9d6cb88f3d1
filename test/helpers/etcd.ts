// Real etcd members for integration tests: spawned from the installed binary on
// 127.0.0.1, each with its own data directory and a log file for debugging.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';

export const ETCD_BIN = process.env.WEFT_ETCD_BIN ?? '/usr/bin/etcd';
export const ETCDCTL_BIN = process.env.WEFT_ETCDCTL_BIN ?? '/usr/bin/etcdctl';

/**
 * Why etcd tests cannot run here, or undefined when they can. Use as
 * `test(name, { skip: etcdSkipReason() }, ...)`: a dev machine without etcd
 * skips with this reason instead of failing (CI installs it).
 */
export function etcdSkipReason(): string | undefined {
  try {
    accessSync(ETCD_BIN, constants.X_OK);
  } catch {
    return `etcd not installed (${ETCD_BIN}; set WEFT_ETCD_BIN or install the etcd-server package)`;
  }
  return undefined;
}

export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  readonly logFile: string;
  /** etcd's member id as a decimal string (the form response headers carry). */
  readonly memberId: string;
  readonly running: boolean;
}

export interface EtcdCluster {
  readonly members: readonly EtcdMember[];
  /** Client URLs of every member, running or not. */
  readonly endpoints: string[];
  /** SIGKILL one member and wait until it has exited. */
  killMember(i: number): Promise<void>;
  /** Run etcdctl against the running members; returns stdout, throws with stderr on failure. */
  etcdctl(args: string[]): string;
  /** Kill every member and remove the data directory (logs too, unless WEFT_KEEP_ETCD_LOGS=1). */
  stop(): Promise<void>;
}

export interface StartEtcdOptions {
  members: 1 | 3;
  /** A directory this cluster owns (created if missing); members live in subdirectories. */
  dataDir: string;
  /** Give up waiting for readiness after this long; default 30 s. */
  readyTimeoutMs?: number;
}

// Every process any cluster in this test process started: killed on exit, so a
// crashed test run does not leave etcd members behind.
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

export async function startEtcdCluster(opts: StartEtcdOptions): Promise<EtcdCluster> {
  const skip = etcdSkipReason();
  if (skip !== undefined) throw new Error(skip);
  await mkdir(opts.dataDir, { recursive: true });
  // A port found free can be taken by someone else before etcd binds it: try
  // again with fresh ports when a member dies during startup.
  let lastErr: unknown;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const cluster = new Cluster(opts.dataDir, opts.members, attempt);
    try {
      await cluster.start(opts.readyTimeoutMs ?? 30_000);
      return cluster;
    } catch (e) {
      lastErr = e;
      await cluster.killAll();
      if (!(e instanceof StartupExit)) break;
    }
  }
  throw lastErr;
}

class StartupExit extends Error {}

interface MemberState {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  logFile: string;
  memberId: string;
  proc?: ChildProcess;
  log?: WriteStream;
  exited?: Promise<void>;
  running: boolean;
}

class Cluster implements EtcdCluster {
  private readonly state: MemberState[] = [];

  constructor(
    private readonly root: string,
    private readonly size: number,
    private readonly attempt: number,
  ) {}

  get members(): readonly EtcdMember[] {
    return this.state.map((m) => ({ ...m }));
  }

  get endpoints(): string[] {
    return this.state.map((m) => m.clientUrl);
  }

  async start(readyTimeoutMs: number): Promise<void> {
    const ports = await freePorts(this.size * 2);
    for (let i = 0; i < this.size; i++) {
      const name = `m${i}`;
      this.state.push({
        name,
        clientUrl: `http://127.0.0.1:${ports[2 * i]}`,
        peerUrl: `http://127.0.0.1:${ports[2 * i + 1]}`,
        dataDir: join(this.root, `${name}.etcd`),
        logFile: join(this.root, `${name}.${this.attempt}.log`),
        memberId: '',
        running: false,
      });
    }
    const initialCluster = this.state.map((m) => `${m.name}=${m.peerUrl}`).join(',');
    const token = `weft-test-${randomBytes(6).toString('hex')}`;
    for (const m of this.state) {
      await rm(m.dataDir, { recursive: true, force: true });
      const args = [
        `--name=${m.name}`,
        `--data-dir=${m.dataDir}`,
        `--listen-client-urls=${m.clientUrl}`,
        `--advertise-client-urls=${m.clientUrl}`,
        `--listen-peer-urls=${m.peerUrl}`,
        `--initial-advertise-peer-urls=${m.peerUrl}`,
        `--initial-cluster=${initialCluster}`,
        '--initial-cluster-state=new',
        `--initial-cluster-token=${token}`,
        // Quick leader election after a member dies, so failover tests are short.
        '--heartbeat-interval=50',
        '--election-timeout=500',
        '--logger=zap',
        '--log-outputs=stderr',
        '--log-level=info',
      ];
      const env: NodeJS.ProcessEnv = { ...process.env };
      // etcd refuses to start on architectures it does not officially support
      // unless told which one it is running on.
      if (process.arch !== 'x64' && process.arch !== 'arm64') env.ETCD_UNSUPPORTED_ARCH = process.arch;
      const log = createWriteStream(m.logFile, { flags: 'a' });
      const proc = spawn(ETCD_BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      proc.stdout.pipe(log, { end: false });
      proc.stderr.pipe(log, { end: false });
      live.add(proc);
      m.proc = proc;
      m.log = log;
      m.running = true;
      m.exited = new Promise<void>((resolve) => {
        proc.once('exit', () => {
          m.running = false;
          live.delete(proc);
          resolve();
        });
        proc.once('error', () => {
          m.running = false;
          live.delete(proc);
          resolve();
        });
      });
    }
    await Promise.all(this.state.map((m) => this.waitHealthy(m, readyTimeoutMs)));
    for (const m of this.state) m.memberId = this.memberIdOf(m);
  }

  async killMember(i: number): Promise<void> {
    const m = this.state[i];
    if (m === undefined) throw new Error(`no member ${i}`);
    if (!m.running) return;
    m.proc?.kill('SIGKILL');
    await m.exited;
  }

  etcdctl(args: string[]): string {
    const endpoints = this.state.filter((m) => m.running).map((m) => m.clientUrl);
    const r = spawnSync(ETCDCTL_BIN, [`--endpoints=${endpoints.join(',')}`, '--dial-timeout=3s', '--command-timeout=10s', ...args], {
      env: { ...process.env, ETCDCTL_API: '3' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    if (r.status !== 0) throw new Error(`etcdctl ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}${r.error?.message ?? ''}`);
    return r.stdout;
  }

  async killAll(): Promise<void> {
    await Promise.all(this.state.map((_, i) => this.killMember(i)));
    for (const m of this.state) m.log?.end();
  }

  async stop(): Promise<void> {
    await this.killAll();
    if (process.env.WEFT_KEEP_ETCD_LOGS === '1') {
      await Promise.all(this.state.map((m) => rm(m.dataDir, { recursive: true, force: true })));
    } else {
      await rm(this.root, { recursive: true, force: true });
    }
  }

  /** Poll the member's /health until it reports a working cluster; fail at once if it exits. */
  private async waitHealthy(m: MemberState, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer yet';
    while (Date.now() < deadline) {
      if (!m.running) {
        throw new StartupExit(`etcd member ${m.name} exited during startup; log: ${m.logFile}\n${tail(m.logFile)}`);
      }
      try {
        const res = await fetch(`${m.clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
        const body = await res.text();
        if (res.ok && /"health"\s*:\s*"true"/.test(body)) return;
        last = `${res.status} ${body}`;
      } catch (e) {
        last = e instanceof Error ? e.message : String(e);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`etcd member ${m.name} not healthy after ${timeoutMs} ms (${last}); log: ${m.logFile}\n${tail(m.logFile)}`);
  }

  private memberIdOf(m: MemberState): string {
    const r = spawnSync(ETCDCTL_BIN, [`--endpoints=${m.clientUrl}`, 'endpoint', 'status', '-w', 'json'], {
      env: { ...process.env, ETCDCTL_API: '3' },
      encoding: 'utf8',
      timeout: 10_000,
    });
    if (r.status !== 0) return '';
    try {
      // JSON numbers this large lose precision in JSON.parse: read the digits.
      const match = /"member_id"\s*:\s*(\d+)/.exec(r.stdout);
      return match?.[1] ?? '';
    } catch {
      return '';
    }
  }
}

async function freePorts(n: number): Promise<number[]> {
  // Hold every listener open until all ports are known, so none repeats.
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
