/**
 * The HTTP filters Weft implements, keyed by Envoy filter name (and found by their
 * typed_config message too). The router is not here: it is the forwarding step
 * itself (http/forward.ts). A filter missing from this map is NACKed unless the HCM
 * marks it optional.
 */
import type { FilterDeps, FilterFactory } from './types.js';
import { faultFactory } from './fault/filter.js';
import { localRateLimitFactory } from './local-ratelimit/filter.js';

export const HTTP_FILTERS: ReadonlyMap<string, FilterFactory> = new Map([
  [faultFactory.name, faultFactory],
  [localRateLimitFactory.name, localRateLimitFactory],
]);

const BY_TYPE: ReadonlyMap<string, FilterFactory> = new Map([...HTTP_FILTERS.values()].map((f) => [f.typeName, f]));

/** The factory for a filter entry: by typed_config type first (Envoy's rule), else by name. */
export function findFilter(name: string, typeName: string | undefined): FilterFactory | undefined {
  return typeName !== undefined ? BY_TYPE.get(typeName) : HTTP_FILTERS.get(name);
}

export const DEFAULT_FILTER_DEPS: FilterDeps = { now: () => performance.now(), random: Math.random };
