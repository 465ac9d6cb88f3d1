import type { Peer } from './types.js';

/** No proxy: the load goes straight to the upstream (the baseline). */
export const directPeer: Peer = {
  name: 'direct',
  kind: 'none',
  describe: 'no proxy: the client talks to the upstream itself',
  missing: () => undefined,
  start: async ({ upstreamPort }) => ({ port: upstreamPort, procs: [], pids: () => [], stop: async () => {} }),
};
