import { createServer } from 'node:net';

/** Whether `host:port` can be bound now (EADDRINUSE, EADDRNOTAVAIL... → false). */
export function canBind(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.unref();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

/**
 * A port free on every address right now (bound on the wildcard address), for
 * an app that will listen on it shortly: the demo's ports must be known before
 * its YAML is applied.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.once('error', reject);
    s.listen(0, () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once a TCP connection to host:port succeeds; rejects after `timeoutMs` or when `gaveUp()` says so. */
export async function waitForPort(host: string, port: number, timeoutMs: number, gaveUp: () => string | undefined): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, host);
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    const why = gaveUp();
    if (why !== undefined) throw new Error(why);
    if (Date.now() >= deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
