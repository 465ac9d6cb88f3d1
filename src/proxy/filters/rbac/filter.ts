/**
 * envoy.filters.http.rbac. The control plane emits up to three of these in order
 * (LOG, DENY, ALLOW: Istio's AUDIT/DENY/ALLOW); each one decides alone and the first
 * denial answers 403 "RBAC: access denied" (gRPC: PERMISSION_DENIED) with flag RBAC.
 * LOG never denies: a match sets `envoy.common.access_log_hint` and writes a log line.
 * Shadow rules are evaluated and recorded in `envoy.filters.http.rbac` metadata only.
 * A route's RBACPerRoute replaces the listener's config (no `rbac` in it: off there).
 */
import type { ProtoJson } from '../../config/types.js';
import type { FilterFactory, FilterRequest, FilterVerdict, HttpFilter, LocalReplySpec } from '../types.js';
import { compileRbacConfig, compileRbacPerRoute, type RbacConfig } from './config.js';
import { logRbacDecision } from './decision-log.js';
import { evaluateRbac, type RbacEngine, type RbacResult } from './engine.js';
import { UnevaluableError } from './matchers.js';

export const RBAC_FILTER_NAME = 'envoy.filters.http.rbac';
/** Envoy's dynamic-metadata namespace for this filter (whatever name the HCM gives each instance). */
export const RBAC_METADATA_NAMESPACE = 'envoy.filters.http.rbac';
const COMMON_NAMESPACE = 'envoy.common';

const DENIED: LocalReplySpec = Object.freeze({ flag: 'RBAC', status: 403 });
const UNEVALUABLE: RbacResult = Object.freeze({ allowed: false, policy: undefined });

function mark(r: FilterRequest, ns: string, key: string, value: unknown): void {
  const rec = r.metadata.get(ns);
  if (rec !== undefined) rec[key] = value;
  else r.metadata.set(ns, { [key]: value });
}

/** Evaluates, turning "cannot evaluate" into a denial (fail closed) and reporting it. */
function evaluate(e: RbacEngine, r: FilterRequest, report: boolean): RbacResult {
  try {
    return evaluateRbac(e, r);
  } catch (err) {
    if (!(err instanceof UnevaluableError)) throw err;
    if (report) logRbacDecision({ decision: 'unevaluable', action: e.action, policy: undefined, filter: 'http', principal: r.connection.peerPrincipal, remote: r.connection.remoteAddress, method: r.method, path: r.path });
    return UNEVALUABLE;
  }
}

function pathOnly(p: string): string {
  const q = p.indexOf('?');
  return q < 0 ? p : p.slice(0, q);
}

export function createRbacFilter(base: RbacConfig): HttpFilter {
  return {
    decodeHeaders(r: FilterRequest, perRoute: unknown): FilterVerdict {
      const cfg = perRoute === undefined ? base : (perRoute as RbacConfig | null);
      if (cfg === null) return undefined;
      if (cfg.shadow !== undefined) {
        const s = evaluate(cfg.shadow, r, false);
        mark(r, RBAC_METADATA_NAMESPACE, `${cfg.shadowPrefix}shadow_effective_policy_id`, s.policy ?? '');
        mark(r, RBAC_METADATA_NAMESPACE, `${cfg.shadowPrefix}shadow_engine_result`, s.allowed ? 'allowed' : 'denied');
      }
      const e = cfg.enforced;
      if (e === undefined) return undefined;
      const res = evaluate(e, r, true);
      if (e.action === 'LOG') {
        if (res.policy !== undefined) {
          mark(r, COMMON_NAMESPACE, 'access_log_hint', true);
          logRbacDecision({ decision: 'logged', action: e.action, policy: res.policy, filter: 'http', principal: r.connection.peerPrincipal, remote: r.connection.remoteAddress, method: r.method, path: pathOnly(r.path) });
        }
        return undefined;
      }
      if (res.allowed) return undefined;
      mark(r, RBAC_METADATA_NAMESPACE, `${cfg.rulesPrefix}enforced_effective_policy_id`, res.policy ?? '');
      mark(r, RBAC_METADATA_NAMESPACE, `${cfg.rulesPrefix}enforced_engine_result`, 'denied');
      if (res !== UNEVALUABLE) {
        logRbacDecision({ decision: 'denied', action: e.action, policy: res.policy, filter: 'http', principal: r.connection.peerPrincipal, remote: r.connection.remoteAddress, method: r.method, path: pathOnly(r.path) });
      }
      return DENIED;
    },
  };
}

export const rbacFactory: FilterFactory = {
  name: RBAC_FILTER_NAME,
  typeName: 'envoy.extensions.filters.http.rbac.v3.RBAC',
  create: (fields: ProtoJson, path: string) => createRbacFilter(compileRbacConfig(fields, path, 'http')),
  compilePerRoute: (fields: ProtoJson, path: string) => compileRbacPerRoute(fields, path),
};
