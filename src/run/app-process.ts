/**
 * The application as a child of `weft run`: started with the sidecar's
 * environment, signals passed through, its exit turned into an exit code.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import { WeftError } from '../lib/errors.js';

/** Signals passed to the app: it decides what they mean (drain, reload, stop). */
export const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export interface AppProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves with the shell-style exit code: the app's, or 128 + signal number. */
  readonly exited: Promise<number>;
  signal(sig: NodeJS.Signals): void;
}

/** 128 + n for a death by signal n, as shells report it. */
export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  if (signal !== null) return 128 + (constants.signals[signal] ?? 0);
  return 1;
}

/**
 * Starts `command args` with stdio inherited, in this process's group: if
 * `weft run` is killed outright, whoever signals its group (a terminal, a
 * supervisor, `weft up`) reaches the app too.
 */
export function startApp(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<AppProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: 'inherit' });
    const exited = new Promise<number>((res) => child.once('exit', (code, signal) => res(exitCodeOf(code, signal))));
    child.once('error', (e: NodeJS.ErrnoException) => {
      reject(new WeftError('WEFT_ERR_USAGE', `cannot start ${command}: ${e.code === 'ENOENT' ? 'no such command' : e.message}`, { cause: e }));
    });
    child.once('spawn', () => {
      resolve({
        child,
        pid: child.pid!,
        exited,
        signal: (sig) => {
          if (child.exitCode === null && child.signalCode === null) child.kill(sig);
        },
      });
    });
  });
}
