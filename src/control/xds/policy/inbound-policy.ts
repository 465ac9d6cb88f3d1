import type { Resource } from '../../../api/types.js';
import type { ServiceSpec } from '../../../api/service/service.js';
import { parseDuration } from '../../../lib/duration.js';
import { protoDuration, type MeshInput } from '../model.js';
import { resolveBackendPolicy, type EffectivePolicy } from './attach.js';
import { localRateLimit, localRateLimitFilter, RATE_LIMIT_FILTER } from './route-policy.js';

/**
 * BackendPolicy settings enforced by the target's own sidecar, on its inbound
 * listener (inbound.ts), resolved per Service port (the inbound side cannot see
 * which route or rule a caller matched, so only Service and Service-port targets
 * count here):
 *
 * | Weft                          | Envoy, inbound                                                          |
 * |-------------------------------|-------------------------------------------------------------------------|
 * | rateLimit with scope workload | route typed_per_filter_config[envoy.filters.http.local_ratelimit]: one bucket per port in each workload's sidecar, shared by every caller; the HCM carries a bucketless local_ratelimit filter so the route's runs |
 * | timeouts.streamIdle           | HCM stream_idle_timeout of the port's mTLS chain; on the plaintext chain (one HCM for every HTTP port) the port's route idle_timeout |
 *
 * timeouts.streamIdle keeps its caller-side translation (route idle_timeout,
 * route-policy.ts); the inbound copy also bounds callers the caller-side one
 * never reaches (proxyless gRPC clients, plaintext clients in PERMISSIVE mode).
 */

type Obj = Record<string, unknown>;
type Port = ServiceSpec['ports'][number];

export interface InboundPortPolicy {
  /** For the port's inbound route: typed_per_filter_config entries (empty: none). */
  readonly perFilter: Obj;
  /** timeouts.streamIdle as a proto Duration, if a policy sets it. */
  readonly streamIdle: Obj | undefined;
}

const NONE: InboundPortPolicy = Object.freeze({ perFilter: Object.freeze({}), streamIdle: undefined });

/** The effective policy of one port of `svc` as a target (what `weft describe service` prints per port). */
export function portPolicy(input: MeshInput, svc: Resource<ServiceSpec>, p: Port): EffectivePolicy {
  const service = { namespace: svc.metadata.namespace ?? 'default', name: svc.metadata.name, port: p.port, ...(p.name !== undefined ? { portName: p.name } : {}) };
  return resolveBackendPolicy(input.backendPolicies ?? [], { service });
}

export function inboundPortPolicy(input: MeshInput, svc: Resource<ServiceSpec>, p: Port): InboundPortPolicy {
  if ((input.backendPolicies?.length ?? 0) === 0) return NONE;
  const { settings } = portPolicy(input, svc, p);
  const perFilter: Obj = {};
  if (settings.rateLimit?.scope === 'workload') perFilter[RATE_LIMIT_FILTER] = localRateLimit(settings.rateLimit);
  const idleMs = settings.timeouts?.streamIdle === undefined ? undefined : parseDuration(settings.timeouts.streamIdle);
  return { perFilter, streamIdle: idleMs === undefined ? undefined : protoDuration(idleMs) };
}

/** The HCM-level local_ratelimit entry when one of `policies` has a bucket (else undefined: the HCM stays as it was). */
export function inboundRateLimitFilter(policies: readonly InboundPortPolicy[]): Obj | undefined {
  return policies.some((p) => p.perFilter[RATE_LIMIT_FILTER] !== undefined) ? localRateLimitFilter() : undefined;
}
