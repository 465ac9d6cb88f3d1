import { startNodeChild } from './node-child.js';
import type { Peer } from './types.js';

export function weftPeer(workers: number): Peer {
  return {
    name: workers === 1 ? 'weft' : `weft x${workers}`,
    kind: 'weft',
    describe: workers === 1
      ? 'Weft proxy (startProxy, static bootstrap), 1 process'
      : `Weft proxy, startProxy({ concurrency: ${workers} }): primary (admin, config) + ${workers} node:cluster workers sharing the listener`,
    missing: () => undefined,
    start: (ctx) => startNodeChild(workers === 1 ? 'weft' : `weft-x${workers}`, 'weft', ctx, { workers: String(workers) }),
  };
}

/** A Weft proxy whose cluster points at `upstreamPort` (used to chain two of them). */
export const startWeft = (ctx: Parameters<Peer['start']>[0]): ReturnType<Peer['start']> => weftPeer(1).start(ctx);
