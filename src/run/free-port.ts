import { createServer } from 'node:net';

/**
 * A port free on `host` right now. Only for a port that must be known before
 * anything can bind it (it goes into the xDS node metadata before the listener
 * exists); everything else binds port 0 itself.
 */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.once('error', reject);
    s.listen(0, host, () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}
