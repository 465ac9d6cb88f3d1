/**
 * Process bookkeeping for the proxy benchmark: every child it starts is recorded
 * here and stopped on the way out (normal end, Ctrl-C, SIGTERM, uncaught error).
 * Children get their own process group so that nginx/haproxy workers go too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const HOST = '127.0.0.1';
/** dist/bench/proxy (where the compiled child scripts live). */
export const HERE = dirname(fileURLToPath(import.meta.url));
export const child = (name: string): string => join(HERE, 'children', `${name}.js`);

export interface Proc {
  readonly name: string;
  readonly pid: number;
  readonly cp: ChildProcess;
  /** stderr/stdout tail, for error messages. */
  output(): string;
  readonly exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

const live = new Set<Proc>();

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Starts a child in its own process group; it is stopped by stopAll() if still running. */
export function startProc(name: string, cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Proc {
  const cp = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: opts.env ?? process.env, cwd: opts.cwd });
  let tail = '';
  const keep = (d: Buffer): void => { tail = (tail + d.toString()).slice(-4000); };
  cp.stdout?.on('data', keep);
  cp.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => {
    cp.once('exit', (code) => resolve(code));
    cp.once('error', (e) => { tail += String(e); resolve(-1); });
  });
  const p: Proc = {
    name,
    pid: cp.pid ?? -1,
    cp,
    output: () => tail,
    exited,
    stop: async (signal = 'SIGTERM') => {
      if (cp.exitCode === null && cp.signalCode === null && cp.pid !== undefined) {
        try { process.kill(-cp.pid, signal); } catch { /* already gone */ }
        const done = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)]);
        if (!done) {
          try { process.kill(-cp.pid, 'SIGKILL'); } catch { /* gone */ }
          await Promise.race([exited, sleep(2000)]);
        }
      }
      live.delete(p);
    },
  };
  live.add(p);
  void exited.then(() => { /* keep in `live` until stop(): the group may still hold workers */ });
  return p;
}

/** Load generators run through execFile (wrk, h2load): killed by stopAll() if still running. */
const loads = new Set<ChildProcess>();
export function trackLoad(cp: ChildProcess): void {
  loads.add(cp);
  cp.once('exit', () => loads.delete(cp));
}

export async function stopAll(): Promise<void> {
  for (const cp of loads) { try { cp.kill('SIGKILL'); } catch { /* gone */ } }
  loads.clear();
  await Promise.all([...live].map((p) => p.stop()));
}

let handlersInstalled = false;
/** Ctrl-C, SIGTERM and uncaught errors stop every child before the process exits. */
export function installCleanup(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  const bail = (code: number, why: unknown): void => {
    if (why !== undefined) console.error(why);
    void stopAll().finally(() => process.exit(code));
  };
  process.once('SIGINT', () => bail(130, '\ninterrupted: stopping every child process'));
  process.once('SIGTERM', () => bail(143, 'terminated: stopping every child process'));
  process.once('uncaughtException', (e) => bail(1, e));
  process.once('unhandledRejection', (e) => bail(1, e));
}

/** A free TCP port on 127.0.0.1 (bind 0, read, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, HOST, () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface Probe { status: number; bytes: number; headers: Record<string, string | string[] | undefined> }

export function get(port: number, path = '/', timeoutMs = 2000): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const req = request({ host: HOST, port, path, agent: false, headers: { host: 'bench.local' } }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => { bytes += c.length; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, headers: res.headers }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error('probe timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Waits until GET / on the port answers 200 with `bytes` bytes, or throws with the child's output. */
export async function waitReady(port: number, proc: Proc | undefined, bytes: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    if (proc !== undefined && proc.cp.exitCode !== null) throw new Error(`${proc.name} exited (${proc.cp.exitCode}):\n${proc.output()}`);
    try {
      const r = await get(port);
      if (r.status === 200 && r.bytes === bytes) return;
      last = `status ${r.status}, ${r.bytes} bytes`;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${proc?.name ?? 'port ' + port} not ready on ${port}: ${last}\n${proc?.output() ?? ''}`);
    await sleep(50);
  }
}

/** VmRSS of a process in bytes, from /proc/<pid>/status (undefined when gone). */
export function rssBytes(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? undefined : Number(m[1]) * 1024;
  } catch {
    return undefined;
  }
}

/** Pids of a process's direct children (cluster workers), from /proc. */
export function childPids(pid: number): number[] {
  try {
    const out: number[] = [];
    for (const t of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)) if (t !== '') out.push(Number(t));
    return out;
  } catch {
    return [];
  }
}

/** Absolute path of an executable found on PATH (or the usual sbin dirs), else undefined. */
export function which(bin: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const d of dirs) {
    if (d === '') continue;
    const p = join(d, bin);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** The 1 KB body every upstream serves (same bytes for node and nginx upstreams). */
export const BODY_BYTES = 1024;
export function body1k(): Buffer {
  const line = 'weft proxy benchmark payload 0123456789abcdefghijklmnopqrstuvwxyz\n';
  return Buffer.from(line.repeat(Math.ceil(BODY_BYTES / line.length)).slice(0, BODY_BYTES - 1) + '\n');
}
