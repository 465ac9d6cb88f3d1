/**
 * The HTTP filters Weft implements, keyed by Envoy filter name (and found by their
 * typed_config message too). The router is not here: it is the forwarding step
 * itself (http/forward.ts). A filter missing from this map is NACKed unless the HCM
 * marks it optional.
 */
import type { FilterDeps, FilterFactory } from './types.js';
import { faultFactory } from './fault/filter.js';
import { jwtFactory } from './jwt/filter.js';
import { localRateLimitFactory } from './local-ratelimit/filter.js';
import { rbacFactory } from './rbac/filter.js';

// Built on first use, not at import: filter modules import config/ helpers that import
// this registry, and an eager table would read a factory before its module has run.
let byName: ReadonlyMap<string, FilterFactory> | undefined;
let byType: ReadonlyMap<string, FilterFactory> | undefined;

/** The HTTP filters by Envoy name. */
export function httpFilters(): ReadonlyMap<string, FilterFactory> {
  byName ??= new Map([faultFactory, localRateLimitFactory, jwtFactory, rbacFactory].map((f): [string, FilterFactory] => [f.name, f]));
  return byName;
}

/** typed_per_filter_config messages that differ from the filter's own typed_config. */
function perRouteTypes(): [string, FilterFactory][] {
  return [
    ['envoy.extensions.filters.http.rbac.v3.RBACPerRoute', rbacFactory],
    ['envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig', jwtFactory],
  ];
}

/** The factory for a filter entry: by typed_config type first (Envoy's rule), else by name. */
export function findFilter(name: string, typeName: string | undefined): FilterFactory | undefined {
  byType ??= new Map([...[...httpFilters().values()].map((f): [string, FilterFactory] => [f.typeName, f]), ...perRouteTypes()]);
  return typeName !== undefined ? byType.get(typeName) : httpFilters().get(name);
}

export const DEFAULT_FILTER_DEPS: FilterDeps = { now: () => performance.now(), random: Math.random };
