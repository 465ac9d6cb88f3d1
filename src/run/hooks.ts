/**
 * The seam around the application's lifetime in `weft run`: something to set up
 * after the sidecar is ready and before the app starts, and to undo after the
 * app exited and before the sidecar stops. Transparent capture (iptables
 * redirection, issue 8 item 3) plugs in here; explicit mode has no hook.
 */
export interface RunContext {
  readonly service: string;
  readonly namespace: string;
  /** Bound ports of the sidecar's listeners. */
  readonly outboundPort: number;
  readonly inboundPort: number;
  readonly adminPort: number;
  /** The app's ports (--port). */
  readonly appPorts: readonly number[];
}

/** Undoes what a hook set up; called once, also when the app failed to start. */
export interface AppLifecycleUndo {
  afterAppExit(): Promise<void>;
}

/** Runs before the app starts; throwing stops `weft run` before the app exists. */
export type BeforeAppStart = (ctx: RunContext) => Promise<AppLifecycleUndo | undefined>;

/** Runs the hooks in order; the undos come back in reverse order. */
export async function runBeforeAppStart(hooks: readonly BeforeAppStart[], ctx: RunContext): Promise<AppLifecycleUndo> {
  const undos: AppLifecycleUndo[] = [];
  const undoAll: AppLifecycleUndo = {
    async afterAppExit() {
      for (const u of undos.reverse()) await u.afterAppExit();
      undos.length = 0;
    },
  };
  try {
    for (const h of hooks) {
      const u = await h(ctx);
      if (u !== undefined) undos.push(u);
    }
  } catch (e) {
    await undoAll.afterAppExit();
    throw e;
  }
  return undoAll;
}
