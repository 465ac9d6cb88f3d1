/** Starts one of the compiled node child scripts (children/NAME.js) as a peer. */
import { childPids, child, freePort, startProc, waitReady, BODY_BYTES } from '../common.js';
import type { RunningPeer, StartContext } from './types.js';

export async function startNodeChild(name: string, script: string, ctx: StartContext, extra: Record<string, string> = {}): Promise<RunningPeer> {
  const port = await freePort();
  const argv = [...(ctx.nodeFlags ?? []), child(script), '--port', String(port), '--upstream', String(ctx.upstreamPort)];
  for (const [k, v] of Object.entries(extra)) argv.push(`--${k}`, v);
  const proc = startProc(name, process.execPath, argv, { cwd: ctx.tmp });
  try {
    await waitReady(port, proc, BODY_BYTES);
  } catch (e) {
    await proc.stop();
    throw e;
  }
  return { port, procs: [proc], pids: () => [proc.pid, ...childPids(proc.pid)], stop: () => proc.stop() };
}

/** Whether a package resolves from the benchmark's location. */
export function resolves(pkg: string): boolean {
  try {
    import.meta.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}
