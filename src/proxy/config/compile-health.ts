/** Cluster outlier_detection and health_checks → OutlierConfig / HealthCheckConfig (Envoy's defaults). */
import { arr, durationMs, fail, num, obj, optObj, optStr, str } from './proto-values.js';
import type { HealthCheckConfig, HealthCheckKind, OutlierConfig } from './types.js';

export function compileOutlier(v: unknown, path: string): OutlierConfig {
  const o = obj(v, path);
  for (const k of ['split_external_local_origin_errors', 'failure_percentage_threshold', 'enforcing_failure_percentage', 'enforcing_failure_percentage_local_origin']) {
    const x = o[k];
    if (x === undefined || x === false) continue;
    if (k.startsWith('enforcing_failure_percentage') && num(x, `${path}.${k}`, 0) === 0) continue;
    if (k === 'failure_percentage_threshold') continue; // only read when failure-percentage ejection is enforced
    fail(`${path}.${k}`, 'not supported yet');
  }
  const pct = (k: string, d: number): number => {
    const n = num(o[k], `${path}.${k}`, d);
    if (n < 0 || n > 100) fail(`${path}.${k}`, 'must be in [0, 100]');
    return n;
  };
  const baseEjectionTimeMs = durationMs(o.base_ejection_time, `${path}.base_ejection_time`, 30_000);
  const intervalMs = durationMs(o.interval, `${path}.interval`, 10_000);
  if (intervalMs <= 0) fail(`${path}.interval`, 'must be > 0');
  return Object.freeze({
    consecutive5xx: num(o.consecutive_5xx, `${path}.consecutive_5xx`, 5),
    enforcingConsecutive5xx: pct('enforcing_consecutive_5xx', 100),
    consecutiveGatewayFailure: num(o.consecutive_gateway_failure, `${path}.consecutive_gateway_failure`, 5),
    enforcingConsecutiveGatewayFailure: pct('enforcing_consecutive_gateway_failure', 0),
    intervalMs,
    baseEjectionTimeMs,
    maxEjectionTimeMs: durationMs(o.max_ejection_time, `${path}.max_ejection_time`, Math.max(300_000, baseEjectionTimeMs)),
    maxEjectionPercent: pct('max_ejection_percent', 10),
    enforcingSuccessRate: pct('enforcing_success_rate', 100),
    successRateMinimumHosts: num(o.success_rate_minimum_hosts, `${path}.success_rate_minimum_hosts`, 5),
    successRateRequestVolume: num(o.success_rate_request_volume, `${path}.success_rate_request_volume`, 100),
    successRateStdevFactor: num(o.success_rate_stdev_factor, `${path}.success_rate_stdev_factor`, 1900),
  });
}

export function compileHealthCheck(v: unknown, path: string): HealthCheckConfig {
  const h = obj(v, path);
  const timeoutMs = durationMs(h.timeout, `${path}.timeout`, 0);
  const intervalMs = durationMs(h.interval, `${path}.interval`, 0);
  if (timeoutMs <= 0) fail(`${path}.timeout`, 'is required and must be > 0');
  if (intervalMs <= 0) fail(`${path}.interval`, 'is required and must be > 0');
  const unhealthyThreshold = num(h.unhealthy_threshold, `${path}.unhealthy_threshold`, 0);
  const healthyThreshold = num(h.healthy_threshold, `${path}.healthy_threshold`, 0);
  if (unhealthyThreshold < 1) fail(`${path}.unhealthy_threshold`, 'is required and must be ≥ 1');
  if (healthyThreshold < 1) fail(`${path}.healthy_threshold`, 'is required and must be ≥ 1');
  if (h.transport_socket_match_criteria !== undefined) fail(`${path}.transport_socket_match_criteria`, 'not supported');
  let kind: HealthCheckKind;
  if (h.http_health_check !== undefined) {
    const p = `${path}.http_health_check`;
    const x = obj(h.http_health_check, p);
    for (const k of ['send', 'receive', 'codec_client_type', 'retriable_statuses', 'method']) {
      if (x[k] !== undefined && !(Array.isArray(x[k]) && (x[k] as unknown[]).length === 0) && x[k] !== 'HTTP1' && x[k] !== 0) fail(`${p}.${k}`, 'not supported yet');
    }
    const hp = str(x.path, `${p}.path`);
    if (!hp.startsWith('/')) fail(`${p}.path`, 'must start with /');
    const ranges = arr(x.expected_statuses, `${p}.expected_statuses`).map((r, i): readonly [number, number] => {
      const o = obj(r, `${p}.expected_statuses[${i}]`);
      const start = num(o.start, `${p}.expected_statuses[${i}].start`, 0);
      const end = num(o.end, `${p}.expected_statuses[${i}].end`, 0);
      if (start < 100 || end > 600 || end <= start) fail(`${p}.expected_statuses[${i}]`, 'want 100 ≤ start < end ≤ 600');
      return [start, end];
    });
    // Envoy's default: 200 only.
    kind = { type: 'http', path: hp, host: optStr(x.host, `${p}.host`), expected: ranges.length === 0 ? [[200, 201]] : ranges };
  } else if (h.tcp_health_check !== undefined) {
    const x = obj(h.tcp_health_check, `${path}.tcp_health_check`);
    if (x.send !== undefined || arr(x.receive, `${path}.tcp_health_check.receive`).length > 0) fail(`${path}.tcp_health_check`, 'send/receive payloads are not supported (connect-only checks are)');
    kind = { type: 'tcp' };
  } else if (h.grpc_health_check !== undefined) {
    const x = optObj(h.grpc_health_check, `${path}.grpc_health_check`) ?? {};
    kind = { type: 'grpc', serviceName: optStr(x.service_name, `${path}.grpc_health_check.service_name`) ?? '', authority: optStr(x.authority, `${path}.grpc_health_check.authority`) };
  } else {
    return fail(path, 'needs http_health_check, tcp_health_check or grpc_health_check');
  }
  return Object.freeze({ kind, timeoutMs, intervalMs, unhealthyThreshold, healthyThreshold });
}
