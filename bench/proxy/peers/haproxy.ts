import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BODY_BYTES, freePort, HOST, startProc, waitReady, which } from '../common.js';
import type { Peer } from './types.js';

export const haproxyPeer: Peer = {
  name: 'haproxy',
  kind: 'native',
  describe: 'HAProxy, nbthread 1, mode http, http-keep-alive, http-reuse always',
  missing: () => (which('haproxy') === undefined ? 'haproxy is not installed (apt-get install haproxy)' : undefined),
  start: async ({ upstreamPort, tmp, h2 }) => {
    const port = await freePort();
    const h2Port = h2 === true ? await freePort() : undefined;
    const file = join(tmp, 'haproxy.cfg');
    writeFileSync(file, `global
  nbthread 1
  maxconn 4096
  pidfile ${join(tmp, 'haproxy.pid')}

defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 120s

frontend fe
  bind ${HOST}:${port}${h2Port === undefined ? '' : `\n  bind ${HOST}:${h2Port} proto h2`}
  default_backend be

backend be
  server up ${HOST}:${upstreamPort} maxconn 4096
`);
    const proc = startProc('haproxy', which('haproxy')!, ['-db', '-f', file]);
    try {
      await waitReady(port, proc, BODY_BYTES);
    } catch (e) {
      await proc.stop();
      throw e;
    }
    return { port, h2Port, procs: [proc], pids: () => [proc.pid], stop: () => proc.stop() };
  },
};
