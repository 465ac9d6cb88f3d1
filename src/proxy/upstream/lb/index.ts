import type { LbPolicy } from '../../config/types.js';
import { createLeastRequest } from './least-request.js';
import { createLocalityWeighted } from './locality-weighted.js';
import { createMaglev } from './maglev.js';
import { createRandom } from './random.js';
import { createRingHash } from './ring-hash.js';
import { createRoundRobin } from './round-robin.js';
import type { Host, LbOptions, LoadBalancer } from './types.js';

export type { Host, HostStats, LbContext, LbOptions, LoadBalancer } from './types.js';
export { hash53 } from './hash.js';
export { createLocalityWeighted } from './locality-weighted.js';

/** One factory keyed by Envoy's lb_policy name; the conformance test runs every entry. */
export function createLoadBalancer(policy: LbPolicy, hosts: readonly Host[], opts: LbOptions): LoadBalancer {
  const lw = opts.localityWeights;
  if (lw !== undefined && policy !== 'RING_HASH' && policy !== 'MAGLEV') {
    const { localityWeights: _ignored, ...flat } = opts;
    return createLocalityWeighted(hosts, lw, (group) => createLoadBalancer(policy, group, flat));
  }
  const random = opts.random ?? Math.random;
  switch (policy) {
    case 'ROUND_ROBIN': return createRoundRobin(hosts, random);
    case 'LEAST_REQUEST': return createLeastRequest(hosts, opts.leastRequestChoices, random);
    case 'RANDOM': return createRandom(hosts, random);
    case 'RING_HASH': return createRingHash(hosts, opts.minRingSize, opts.maxRingSize, random);
    case 'MAGLEV': return createMaglev(hosts, opts.maglevTableSize, random);
  }
}

export const LB_POLICIES: readonly LbPolicy[] = ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV'];
