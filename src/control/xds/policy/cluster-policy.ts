import { BACKEND_POLICY_DEFAULTS, type HealthCheck, type LoadBalancer, type OutlierDetection } from '../../../api/backendpolicy/backendpolicy.js';
import { parseDuration } from '../../../lib/duration.js';
import { TYPE_PREFIX } from '../../../xds/type-urls.js';
import { protoDuration } from '../model.js';
import type { EffectiveSettings } from './attach.js';

/**
 * Endpoint settings of a BackendPolicy (the Service port as a backend) → Envoy
 * v3 Cluster fields. Unset fields inside a setting take BACKEND_POLICY_DEFAULTS.
 *
 * | Weft                               | Envoy Cluster                                             |
 * |------------------------------------|-----------------------------------------------------------|
 * | loadBalancer.type                  | lb_policy (+ ring_hash_lb_config for RingHash)            |
 * | connectionPool.max*                | circuit_breakers.thresholds[0] (priority DEFAULT)         |
 * | retry.budget (Service-level retry) | circuit_breakers.thresholds[0].retry_budget               |
 * | connectionPool.connectTimeout / timeouts.connect | connect_timeout                             |
 * | connectionPool.idleTimeout / timeouts.idle, maxRequestsPerConnection | HttpProtocolOptions.common_http_protocol_options |
 * | outlierDetection                   | outlier_detection                                         |
 * | healthCheck                        | health_checks[0]                                          |
 *
 * `grpc` flavour (proxyless gRPC, XDS-NOTES.md): lb_policy only ROUND_ROBIN or
 * RING_HASH (LeastRequest, Random → ROUND_ROBIN; Maglev → RING_HASH); no
 * health_checks (gRPC does no active checks). gRPC honours max_requests and,
 * of outlier detection, only the success-rate (and failure-percentage)
 * algorithms: consecutive5xx / consecutiveGatewayErrors are sent but ignored.
 */

type Obj = Record<string, unknown>;
export type ClusterFlavour = 'envoy' | 'grpc';

export const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

const LB_POLICY: Record<LoadBalancer['type'], string> = {
  RoundRobin: 'ROUND_ROBIN',
  LeastRequest: 'LEAST_REQUEST',
  Random: 'RANDOM',
  RingHash: 'RING_HASH',
  Maglev: 'MAGLEV',
};
const GRPC_LB_POLICY: Record<LoadBalancer['type'], string> = {
  RoundRobin: 'ROUND_ROBIN',
  LeastRequest: 'ROUND_ROBIN',
  Random: 'ROUND_ROBIN',
  RingHash: 'RING_HASH',
  Maglev: 'RING_HASH',
};

function ms(d: string | undefined): number | undefined {
  return d === undefined ? undefined : parseDuration(d);
}

function dur(d: string | undefined): Obj | undefined {
  const v = ms(d);
  return v === undefined ? undefined : protoDuration(v);
}

function u32(v: number | undefined): Obj | undefined {
  return v === undefined ? undefined : { value: v };
}

/** Drops undefined values (the checker and the wire want absent fields absent). */
function compact(o: Obj): Obj {
  const out: Obj = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out;
}

export function lbPolicyFields(lb: LoadBalancer, flavour: ClusterFlavour): Obj {
  const policy = (flavour === 'grpc' ? GRPC_LB_POLICY : LB_POLICY)[lb.type];
  const out: Obj = { lb_policy: policy };
  // XX_HASH is Envoy's default and the only function gRPC accepts.
  if (policy === 'RING_HASH') out.ring_hash_lb_config = { minimum_ring_size: { value: 1024 }, hash_function: 'XX_HASH' };
  return out;
}

export function circuitBreakers(settings: EffectiveSettings): Obj | undefined {
  const cp = settings.connectionPool;
  const budget = settings.retry !== undefined ? { ...BACKEND_POLICY_DEFAULTS.retry.budget, ...(settings.retry.budget ?? {}) } : undefined;
  if (cp === undefined && budget === undefined) return undefined;
  const t: Obj = { priority: 'DEFAULT' };
  if (cp !== undefined) {
    const d = BACKEND_POLICY_DEFAULTS.connectionPool;
    t.max_connections = u32(cp.maxConnections ?? d.maxConnections);
    t.max_pending_requests = u32(cp.maxPendingRequests ?? d.maxPendingRequests);
    t.max_requests = u32(cp.maxRequests ?? d.maxRequests);
    t.max_retries = u32(cp.maxRetries ?? d.maxRetries);
  }
  // With a budget Envoy ignores max_retries: the budget is what Weft's retry means.
  if (budget !== undefined) t.retry_budget = { budget_percent: { value: budget.percent }, min_retry_concurrency: { value: budget.minRetryConcurrency } };
  return { thresholds: [t] };
}

export function outlierDetection(o: OutlierDetection): Obj {
  const d = BACKEND_POLICY_DEFAULTS.outlierDetection;
  const consecutive5xx = o.consecutive5xx ?? d.consecutive5xx;
  const out: Obj = {
    consecutive_5xx: u32(consecutive5xx),
    interval: dur(o.interval ?? d.interval),
    base_ejection_time: dur(o.baseEjectionTime ?? d.baseEjectionTime),
    max_ejection_percent: u32(o.maxEjectionPercent ?? d.maxEjectionPercent),
  };
  if (consecutive5xx === 0) out.enforcing_consecutive_5xx = { value: 0 };
  if (o.consecutiveGatewayErrors !== undefined && o.consecutiveGatewayErrors > 0) {
    out.consecutive_gateway_failure = u32(o.consecutiveGatewayErrors);
    // Envoy enforces gateway-failure ejections at 0% unless told otherwise.
    out.enforcing_consecutive_gateway_failure = { value: 100 };
  }
  const sr = o.successRate;
  if (sr === undefined) {
    // Envoy (and gRPC) run success-rate ejection by default; Weft only when asked (as Istio).
    out.enforcing_success_rate = { value: 0 };
  } else {
    out.enforcing_success_rate = { value: 100 };
    if (sr.minimumHosts !== undefined) out.success_rate_minimum_hosts = u32(sr.minimumHosts);
    if (sr.requestVolume !== undefined) out.success_rate_request_volume = u32(sr.requestVolume);
    // Envoy reads the factor in thousandths: 1900 = 1.9.
    if (sr.stdevFactor !== undefined) out.success_rate_stdev_factor = u32(Math.round(sr.stdevFactor * 1000));
  }
  return compact(out);
}

export function healthCheck(h: HealthCheck): Obj {
  const d = BACKEND_POLICY_DEFAULTS.healthCheck;
  const out: Obj = {
    timeout: dur(h.timeout ?? d.timeout),
    interval: dur(h.interval ?? d.interval),
    healthy_threshold: u32(h.healthyThreshold ?? d.healthyThreshold),
    unhealthy_threshold: u32(h.unhealthyThreshold ?? d.unhealthyThreshold),
  };
  switch (h.type) {
    case 'http': {
      // Envoy's ranges are [start, end); Weft's default is 200-299 (Envoy's is 200 only).
      const statuses = h.expectedStatuses === undefined ? [{ start: 200, end: 300 }] : [...h.expectedStatuses].sort((a, b) => a - b).map((s) => ({ start: s, end: s + 1 }));
      out.http_health_check = { path: h.path ?? d.path, expected_statuses: statuses };
      break;
    }
    case 'tcp':
      out.tcp_health_check = {};
      break;
    case 'grpc':
      out.grpc_health_check = {};
      break;
  }
  return compact(out);
}

/**
 * Applies the endpoint settings to a Cluster built without a policy.
 * `protocol` is the Service port's: HTTP protocol options only make sense for
 * HTTP-like ports (and must name the upstream protocol).
 */
export function applyClusterPolicy(cluster: Obj, settings: EffectiveSettings, protocol: string, flavour: ClusterFlavour): void {
  if (settings.loadBalancer !== undefined) Object.assign(cluster, lbPolicyFields(settings.loadBalancer, flavour));
  const cb = circuitBreakers(settings);
  if (cb !== undefined) cluster.circuit_breakers = cb;
  const connect = settings.connectionPool?.connectTimeout ?? settings.timeouts?.connect ?? (settings.connectionPool !== undefined ? BACKEND_POLICY_DEFAULTS.connectionPool.connectTimeout : undefined);
  if (connect !== undefined) cluster.connect_timeout = dur(connect);
  const idle = settings.connectionPool?.idleTimeout ?? settings.timeouts?.idle;
  const perConn = settings.connectionPool?.maxRequestsPerConnection;
  if (protocol !== 'tcp' && (idle !== undefined || perConn !== undefined)) {
    const common = compact({ idle_timeout: dur(idle), max_requests_per_connection: u32(perConn) });
    const h2 = protocol === 'grpc' || protocol === 'http2';
    cluster.typed_extension_protocol_options = {
      [HTTP_PROTOCOL_OPTIONS]: {
        '@type': `${TYPE_PREFIX}${HTTP_PROTOCOL_OPTIONS}`,
        common_http_protocol_options: common,
        explicit_http_config: h2 ? { http2_protocol_options: {} } : { http_protocol_options: {} },
      },
    };
  }
  if (settings.outlierDetection !== undefined) cluster.outlier_detection = outlierDetection(settings.outlierDetection);
  if (settings.healthCheck !== undefined && flavour === 'envoy') cluster.health_checks = [healthCheck(settings.healthCheck)];
}
