// Real processes for end-to-end tests: the built `weft` binary, started with a
// clean environment, read line by line; every process started is tracked so that
// `killAll()` (in `after`) leaves nothing behind. Readiness is always a line a
// process prints, never a sleep.
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** dist/test/e2e/helpers/ → the repository root. */
export const ROOT = resolve(fileURLToPath(import.meta.url), '../../../../..');
export const CLI = join(ROOT, 'dist/src/cli/main.js');

const started = new Set<ChildProcess>();
const everyRun: Running[] = [];

/** Every child's environment: none of the developer's WEFT_* settings, a private HOME. */
export function childEnv(home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('WEFT_')) env[k] = v;
  return { ...env, HOME: home, NO_COLOR: '1', ...extra };
}

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `weft ARGS` to completion (bounded by `timeoutMs`, then SIGKILL). */
export function runWeft(args: readonly string[], opts: { home: string; input?: string; timeoutMs?: number }): Promise<Result> {
  return new Promise((resolvePromise, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: childEnv(opts.home), stdio: ['pipe', 'pipe', 'pipe'] });
    started.add(p);
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    p.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    p.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      started.delete(p);
      resolvePromise({ code, stdout, stderr });
    });
    p.stdin.end(opts.input ?? '');
  });
}

/** A long-running child and what it printed so far. */
export interface Running {
  readonly proc: ChildProcess;
  readonly name: string;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  readonly exited: Promise<number | string>;
}

/**
 * Starts `weft ARGS` and resolves with the first stdout line matching `ready`
 * (its groups) once it appears; rejects when the process exits first or after
 * `timeoutMs`.
 */
export function startWeft(name: string, args: readonly string[], ready: RegExp, opts: { home: string; timeoutMs?: number }): Promise<{ run: Running; match: RegExpExecArray }> {
  return new Promise((resolvePromise, reject) => {
    const proc = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: childEnv(opts.home), stdio: ['ignore', 'pipe', 'pipe'] });
    started.add(proc);
    let out = '';
    let err = '';
    proc.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    const exited = new Promise<number | string>((res) => {
      proc.once('exit', (code, signal) => {
        started.delete(proc);
        res(code ?? signal ?? 'unknown');
      });
    });
    const run: Running = { proc, name, stdout: () => out, stderr: () => err, exited };
    everyRun.push(run);
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      reject(new Error(`${name}: no ready line within ${opts.timeoutMs ?? 20_000} ms\nstdout:\n${out}\nstderr:\n${err}`));
    }, opts.timeoutMs ?? 20_000);
    createInterface({ input: proc.stdout }).on('line', (line) => {
      out += `${line}\n`;
      const m = ready.exec(line);
      if (m !== null && !done) {
        done = true;
        clearTimeout(timer);
        resolvePromise({ run, match: m });
      }
    });
    void exited.then((how) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(new Error(`${name} exited (${how}) before it was ready\nstdout:\n${out}\nstderr:\n${err}`));
    });
  });
}

/** Sends `signal` and waits for the exit (SIGKILL after `graceMs`). */
export async function stop(run: Running, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<number | string> {
  if (run.proc.exitCode !== null || run.proc.signalCode !== null) return run.exited;
  run.proc.kill(signal);
  const t = setTimeout(() => run.proc.kill('SIGKILL'), graceMs);
  try {
    return await run.exited;
  } finally {
    clearTimeout(t);
  }
}

/** The last `maxChars` of what each long-running child wrote to stderr (for a failing test's report). */
export function stderrTails(maxChars = 4000): string {
  return everyRun
    .filter((r) => r.stderr().trim() !== '')
    .map((r) => `--- ${r.name} (pid ${r.proc.pid ?? '?'}) stderr:\n${r.stderr().slice(-maxChars)}`)
    .join('\n');
}

/** SIGKILL to everything still running that these helpers started. */
export async function killAll(): Promise<void> {
  const waits: Promise<void>[] = [];
  for (const p of started) {
    if (p.exitCode !== null || p.signalCode !== null) continue;
    waits.push(new Promise((res) => p.once('exit', () => res())));
    p.kill('SIGKILL');
  }
  await Promise.all(waits);
  started.clear();
}

/**
 * Polls `fn` until it returns a value other than undefined; throws after `deadlineMs`
 * with the last value `describe` gives. Bounded: never loops forever.
 */
export async function until<T>(what: string, deadlineMs: number, fn: () => Promise<T | undefined>, intervalMs = 50): Promise<T> {
  const end = Date.now() + deadlineMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= end) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}${last === undefined ? '' : `: ${String(last)}`}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
