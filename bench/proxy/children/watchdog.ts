/**
 * Every benchmark child process exits on its own when its parent is gone (the
 * benchmark was SIGKILLed) or after a hard lifetime cap, so no load or server
 * outlives the run. SIGTERM/SIGINT call `onStop` and then exit 0 (a clean exit
 * is what makes `node --cpu-prof` write its profile).
 */
export function watchdog(onStop: () => Promise<void> | void, maxLifetimeMs = Number(process.env.WEFT_BENCH_MAX_LIFETIME_MS ?? 30 * 60_000)): void {
  const parent = process.ppid;
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    const hard = setTimeout(() => process.exit(0), 3000);
    hard.unref();
    void Promise.resolve().then(onStop).catch(() => {}).finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  setInterval(() => {
    let alive = true;
    try { process.kill(parent, 0); } catch { alive = false; }
    if (!alive || process.ppid !== parent) stop();
  }, 1000).unref();
  setTimeout(stop, maxLifetimeMs).unref();
}

/** `--key value` pairs from argv. */
export function args(): Record<string, string> {
  const out: Record<string, string> = {};
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    const k = a[i]!;
    if (k.startsWith('--')) out[k.slice(2)] = a[i + 1] ?? '';
  }
  return out;
}
