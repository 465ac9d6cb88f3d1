/** envoy.extensions.filters.http.fault.v3.HTTPFault → FaultConfig. */
import { compileHeaderMatcher } from '../../config/compile-route.js';
import { arr, durationMs, fail, num } from '../../config/proto-values.js';
import type { HeaderMatch, ProtoJson } from '../../config/types.js';
import { fractionalPercent } from '../fractional-percent.js';

export interface FaultConfig {
  readonly delay?: { readonly ms: number; readonly probability: number } | undefined;
  readonly abort?: { readonly httpStatus?: number | undefined; readonly grpcStatus?: number | undefined; readonly probability: number } | undefined;
  /** All must match for a fault to apply. */
  readonly headers: readonly HeaderMatch[];
  /** Only requests routed to this cluster get faults (upstream_cluster). */
  readonly upstreamCluster?: string | undefined;
  readonly maxActiveFaults?: number | undefined;
}

export function compileFault(f: ProtoJson, path: string): FaultConfig {
  for (const k of ['downstream_nodes', 'response_rate_limit', 'delay_percent_runtime', 'abort_percent_runtime', 'delay_duration_runtime', 'abort_http_status_runtime', 'abort_grpc_status_runtime', 'max_active_faults_runtime']) {
    const v = f[k];
    if (v !== undefined && v !== '' && !(Array.isArray(v) && v.length === 0)) fail(`${path}.${k}`, 'not supported yet');
  }
  let delay: FaultConfig['delay'];
  if (f.delay !== undefined) {
    const d = f.delay as ProtoJson;
    if (d.header_delay !== undefined) fail(`${path}.delay.header_delay`, 'not supported yet');
    delay = { ms: durationMs(d.fixed_delay, `${path}.delay.fixed_delay`, 0), probability: fractionalPercent(d.percentage, `${path}.delay.percentage`, 1) };
  }
  let abort: FaultConfig['abort'];
  if (f.abort !== undefined) {
    const a = f.abort as ProtoJson;
    if (a.header_abort !== undefined) fail(`${path}.abort.header_abort`, 'not supported yet');
    const probability = fractionalPercent(a.percentage, `${path}.abort.percentage`, 1);
    if (a.grpc_status !== undefined) {
      abort = { grpcStatus: num(a.grpc_status, `${path}.abort.grpc_status`, 0), probability };
    } else if (a.http_status !== undefined) {
      const s = num(a.http_status, `${path}.abort.http_status`, 0);
      if (!Number.isInteger(s) || s < 200 || s >= 600) fail(`${path}.abort.http_status`, 'must be in [200, 600)');
      abort = { httpStatus: s, probability };
    } else {
      fail(`${path}.abort`, 'needs http_status or grpc_status');
    }
  }
  const mx = f.max_active_faults === undefined ? undefined : num(f.max_active_faults, `${path}.max_active_faults`, 0);
  return Object.freeze({
    delay,
    abort,
    headers: arr(f.headers, `${path}.headers`).map((h, i) => compileHeaderMatcher(h, `${path}.headers[${i}]`)),
    upstreamCluster: typeof f.upstream_cluster === 'string' && f.upstream_cluster !== '' ? f.upstream_cluster : undefined,
    maxActiveFaults: mx,
  });
}
