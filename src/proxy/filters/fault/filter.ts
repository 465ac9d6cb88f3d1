/**
 * Envoy's fault filter: per request, if the headers match (and upstream_cluster, if
 * set), delay by fixed_delay with the delay percentage, then abort with the abort
 * percentage: an HTTP status, or for gRPC a trailers-only reply with grpc_status.
 * Aborts carry flag FI. The route's typed_per_filter_config replaces the listener's
 * config (the control plane puts an empty one on the listener and the real one on
 * routes). max_active_faults bounds faults in progress.
 */
import { headerMatches } from '../../router/route-table.js';
import type { ProtoJson } from '../../config/types.js';
import type { FilterDeps, FilterFactory, FilterRequest, FilterVerdict, HttpFilter } from '../types.js';
import { hit } from '../fractional-percent.js';
import { compileFault, type FaultConfig } from './config.js';

export const FAULT_FILTER_NAME = 'envoy.filters.http.fault';

export function createFaultFilter(base: FaultConfig, deps: FilterDeps): HttpFilter {
  let active = 0;
  return {
    decodeHeaders(r: FilterRequest, perRoute: unknown): FilterVerdict | Promise<FilterVerdict> {
      const cfg = (perRoute as FaultConfig | undefined) ?? base;
      if (cfg.delay === undefined && cfg.abort === undefined) return undefined;
      if (cfg.upstreamCluster !== undefined && cfg.upstreamCluster !== r.cluster) return undefined;
      if (cfg.headers.length > 0) {
        const headers = r.headers[':method'] === undefined ? { ...r.headers, ':method': r.method } : r.headers;
        if (!cfg.headers.every((m) => headerMatches(m, headers))) return undefined;
      }
      if (cfg.maxActiveFaults !== undefined && active >= cfg.maxActiveFaults) return undefined;
      const delay = cfg.delay !== undefined && cfg.delay.ms > 0 && hit(cfg.delay.probability, deps.random) ? cfg.delay.ms : 0;
      const abort = cfg.abort;
      const decideAbort = (): FilterVerdict => {
        if (abort === undefined || !hit(abort.probability, deps.random)) return undefined;
        if (abort.grpcStatus !== undefined && r.grpc) return { flag: 'FI', status: 200, grpcStatus: abort.grpcStatus };
        // A gRPC abort on a non-gRPC request: Envoy answers with the HTTP mapping of the code (503 for most).
        return { flag: 'FI', status: abort.httpStatus ?? 503 };
      };
      if (delay === 0) return decideAbort();
      active++;
      return new Promise((resolve) => {
        setTimeout(() => { active--; resolve(decideAbort()); }, delay);
      });
    },
  };
}

export const faultFactory: FilterFactory = {
  name: FAULT_FILTER_NAME,
  typeName: 'envoy.extensions.filters.http.fault.v3.HTTPFault',
  create: (fields: ProtoJson, path: string, deps: FilterDeps) => createFaultFilter(compileFault(fields, path), deps),
  compilePerRoute: (fields: ProtoJson, path: string) => compileFault(fields, path),
};
