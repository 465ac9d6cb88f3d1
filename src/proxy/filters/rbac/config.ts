/**
 * envoy.extensions.filters.{http,network}.rbac.v3.RBAC and RBACPerRoute → RbacConfig.
 * Fields Weft cannot honour (unified `matcher` trees, CEL, per-rule stats, delayed
 * denials) are refused so the control plane hears a NACK instead of getting a filter
 * that enforces something else.
 */
import { bool, durationMs, enumStr, fail, obj, str } from '../../config/proto-values.js';
import type { ProtoJson } from '../../config/types.js';
import { compileRbacRules, type RbacEngine } from './engine.js';
import type { Scope } from './matchers.js';

export interface RbacConfig {
  /** Enforced rules; undefined: the filter lets everything through (Envoy: no `rules`). */
  readonly enforced: RbacEngine | undefined;
  /** Shadow rules: evaluated and recorded in metadata, never enforced. */
  readonly shadow: RbacEngine | undefined;
  /** Prefixes of the dynamic-metadata keys (rules_stat_prefix, shadow_rules_stat_prefix). */
  readonly rulesPrefix: string;
  readonly shadowPrefix: string;
}

const HTTP_FIELDS = new Set(['@type', 'rules', 'rules_stat_prefix', 'shadow_rules', 'shadow_rules_stat_prefix', 'track_per_rule_stats']);
const NETWORK_FIELDS = new Set(['@type', 'rules', 'stat_prefix', 'shadow_rules', 'shadow_rules_stat_prefix', 'enforcement_type', 'delay_deny']);

export function compileRbacConfig(f: ProtoJson, path: string, scope: Scope): RbacConfig {
  const known = scope === 'http' ? HTTP_FIELDS : NETWORK_FIELDS;
  for (const k of Object.keys(f)) {
    if (known.has(k)) continue;
    fail(`${path}.${k}`, k === 'matcher' || k === 'shadow_matcher' ? 'unified matcher trees are not supported (use rules)' : 'not supported');
  }
  if (bool(f.track_per_rule_stats, `${path}.track_per_rule_stats`)) fail(`${path}.track_per_rule_stats`, 'per-rule stats are not supported');
  if (scope === 'network') {
    if (str(f.stat_prefix ?? '', `${path}.stat_prefix`) === '') fail(`${path}.stat_prefix`, 'is required');
    // Weft decides when the connection is accepted (after the TLS handshake): every connection-level
    // matcher is known then, so ONE_TIME_ON_FIRST_BYTE and CONTINUOUS decide the same.
    enumStr(f.enforcement_type, `${path}.enforcement_type`, ['ONE_TIME_ON_FIRST_BYTE', 'CONTINUOUS'] as const, 'ONE_TIME_ON_FIRST_BYTE');
    if (durationMs(f.delay_deny, `${path}.delay_deny`, 0) > 0) fail(`${path}.delay_deny`, 'delayed denials are not supported');
  }
  return Object.freeze({
    enforced: f.rules === undefined || f.rules === null ? undefined : compileRbacRules(f.rules, `${path}.rules`, scope),
    shadow: f.shadow_rules === undefined || f.shadow_rules === null ? undefined : compileRbacRules(f.shadow_rules, `${path}.shadow_rules`, scope),
    rulesPrefix: f.rules_stat_prefix === undefined ? '' : str(f.rules_stat_prefix, `${path}.rules_stat_prefix`),
    shadowPrefix: f.shadow_rules_stat_prefix === undefined ? '' : str(f.shadow_rules_stat_prefix, `${path}.shadow_rules_stat_prefix`),
  });
}

/** RBACPerRoute: `rbac` replaces the listener's config on the route; without it the filter is off there. */
export function compileRbacPerRoute(f: ProtoJson, path: string): RbacConfig | null {
  for (const k of Object.keys(f)) if (k !== '@type' && k !== 'rbac') fail(`${path}.${k}`, 'not supported');
  if (f.rbac === undefined || f.rbac === null) return null;
  return compileRbacConfig(obj(f.rbac, `${path}.rbac`), `${path}.rbac`, 'http');
}
