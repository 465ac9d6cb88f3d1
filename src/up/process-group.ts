/**
 * The children of `weft up`, each in its own process group (its `weft run` and
 * the app under it), so that stopping the demo reaches every process, also
 * those a child started, and Ctrl-C in the terminal reaches only `weft up`,
 * which stops them in order.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface GroupChild {
  readonly name: string;
  readonly proc: ChildProcess;
  /** Process group id (= the child's pid, it leads its group). */
  readonly pgid: number;
  readonly exited: Promise<number | string>;
  isRunning(): boolean;
}

export interface SpawnGroupOptions {
  readonly env: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Each line the child writes (stream = 'out' or 'err'). */
  readonly onLine: (stream: 'out' | 'err', line: string) => void;
}

export function spawnInGroup(name: string, command: string, args: readonly string[], o: SpawnGroupOptions): GroupChild {
  // detached: a new session and process group led by the child.
  const proc = spawn(command, args, { env: o.env, ...(o.cwd !== undefined ? { cwd: o.cwd } : {}), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  if (proc.pid === undefined) throw new Error(`cannot start ${name}`);
  let running = true;
  const exited = new Promise<number | string>((resolve) => {
    proc.once('exit', (code, signal) => {
      running = false;
      resolve(code ?? signal ?? 'unknown');
    });
    proc.once('error', (e) => {
      running = false;
      resolve(e.message);
    });
  });
  createInterface({ input: proc.stdout! }).on('line', (l) => o.onLine('out', l));
  createInterface({ input: proc.stderr! }).on('line', (l) => o.onLine('err', l));
  return { name, proc, pgid: proc.pid, exited, isRunning: () => running };
}

/** Whether any process of the group still exists. */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function killGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    // ESRCH: already gone.
  }
}

/**
 * Stops children: `signal` to each leader (it passes it on and drains), then,
 * after `graceMs`, SIGKILL to whatever is left in each group. Resolves when
 * every group is empty (bounded: SIGKILL cannot be refused).
 */
export async function stopGroups(children: readonly GroupChild[], graceMs: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  for (const c of children) if (c.isRunning()) c.proc.kill(signal);
  const deadline = Date.now() + graceMs;
  await Promise.race([
    Promise.all(children.map((c) => c.exited)),
    new Promise((r) => setTimeout(r, graceMs).unref()),
  ]);
  // The leader may be gone while something it started lingers in its group.
  for (const c of children) if (groupAlive(c.pgid)) killGroup(c.pgid, Date.now() >= deadline || !c.isRunning() ? 'SIGKILL' : signal);
  for (let i = 0; i < 100 && children.some((c) => groupAlive(c.pgid)); i++) {
    for (const c of children) if (groupAlive(c.pgid)) killGroup(c.pgid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** SIGKILL to every group at once: the second Ctrl-C. */
export function killGroups(children: readonly GroupChild[]): void {
  for (const c of children) killGroup(c.pgid, 'SIGKILL');
}
