/**
 * `weft run`'s lifecycle, in order: sidecar up and configured → hooks → app
 * started → signals passed to the app → app exits → hooks undone → sidecar
 * drains and stops → the app's exit code. A job therefore always finishes with
 * its mesh still there, and nothing outlives the app.
 */
import { constants } from 'node:os';
import { FORWARDED_SIGNALS, startApp, type AppProcess } from './app-process.js';
import { runBeforeAppStart, type BeforeAppStart } from './hooks.js';
import { startSidecar, type SidecarOptions } from './sidecar.js';

export interface RunOptions extends SidecarOptions {
  readonly command: string;
  readonly args: readonly string[];
  /** Called with one line for the operator (stderr: stdout belongs to the app). */
  readonly say: (line: string) => void;
  readonly hooks?: readonly BeforeAppStart[];
  /** Act as on SIGTERM when the parent process goes away (`weft up` killed outright). */
  readonly stopWithParent?: boolean;
}

/** How often the parent is looked for (no event tells a child its parent died). */
const PARENT_CHECK_MS = 500;

/** Exit code when the sidecar itself failed while the app ran (EX_SOFTWARE). */
export const EXIT_SIDECAR_FAILED = 70;

export async function runWorkload(o: RunOptions): Promise<number> {
  let app: AppProcess | undefined;
  let early: NodeJS.Signals | undefined;
  let finished = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (finished) return;
    if (app !== undefined) app.signal(sig);
    else early ??= sig;
  };
  for (const s of FORWARDED_SIGNALS) process.on(s, onSignal);
  // The sidecar lives in this process: if it breaks beyond repair, the app must not
  // run on without its mesh (nor be left behind).
  let crashed = false;
  const onCrash = (e: unknown): void => {
    if (crashed) return;
    crashed = true;
    o.say(`error: the sidecar failed: ${e instanceof Error ? e.message : String(e)}; stopping the app`);
    app?.signal('SIGTERM');
    const t = setTimeout(() => app?.signal('SIGKILL'), Math.max(o.drainMs, 1000));
    t.unref();
    void (app?.exited ?? Promise.resolve(0)).finally(() => process.exit(EXIT_SIDECAR_FAILED));
  };
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);
  const parent = process.ppid;
  const parentWatch = o.stopWithParent === true
    ? setInterval(() => {
      if (process.ppid === parent) return;
      clearInterval(parentWatch);
      o.say('weft run: the parent process is gone; stopping the app');
      onSignal('SIGTERM');
    }, PARENT_CHECK_MS)
    : undefined;
  parentWatch?.unref();
  try {
    const sidecar = await startSidecar(o);
    if (early !== undefined) {
      await sidecar.stop();
      return 128 + (constants.signals[early] ?? 0);
    }
    o.say(`weft run ready: service=${o.service}.${o.namespace} admin=${sidecar.adminUrl} outbound=127.0.0.1:${sidecar.outboundPort} inbound=${sidecar.inboundPort} node=${sidecar.nodeId}${sidecar.spiffeId !== undefined ? ` identity=${sidecar.spiffeId}` : ''}`);
    let code: number;
    const undo = await runBeforeAppStart(o.hooks ?? [], {
      service: o.service,
      namespace: o.namespace,
      outboundPort: sidecar.outboundPort,
      inboundPort: sidecar.inboundPort,
      adminPort: sidecar.adminPort,
      appPorts: o.appPorts,
    }).catch(async (e: unknown) => {
      await sidecar.stop();
      throw e;
    });
    try {
      app = await startApp(o.command, o.args, { ...process.env, ...sidecar.appEnv(o.appPorts) });
      o.say(`weft run: started ${o.command} (pid ${app.pid})`);
      code = await app.exited;
      o.say(`weft run: the app exited with code ${code}; draining the sidecar`);
    } finally {
      try {
        await undo.afterAppExit();
      } finally {
        await sidecar.stop();
      }
    }
    return code;
  } finally {
    finished = true;
    if (parentWatch !== undefined) clearInterval(parentWatch);
    for (const s of FORWARDED_SIGNALS) process.off(s, onSignal);
    process.off('uncaughtException', onCrash);
    process.off('unhandledRejection', onCrash);
  }
}
