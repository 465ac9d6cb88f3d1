/**
 * One envoy.config.rbac.v3.RBAC (action + named policies) compiled into an engine.
 * A policy matches when one of its permissions and one of its principals match.
 * Policies are tried in name order, as Envoy's engine keeps them in a sorted map, so
 * the policy reported as deciding is the same one Envoy would report.
 */
import { arr, enumStr, fail, obj } from '../../config/proto-values.js';
import { anyOf, compilePermission, compilePrincipal, type AuthzInput, type Matcher, type Scope } from './matchers.js';

export type RbacAction = 'ALLOW' | 'DENY' | 'LOG';

export interface RbacEngine {
  readonly action: RbacAction;
  readonly policies: readonly { readonly name: string; readonly permission: Matcher; readonly principal: Matcher }[];
}

/** The outcome: whether the request may pass, and the policy that matched (if any). */
export interface RbacResult {
  readonly allowed: boolean;
  readonly policy: string | undefined;
}

export function compileRbacRules(v: unknown, path: string, scope: Scope): RbacEngine {
  const rules = obj(v, path);
  for (const k of Object.keys(rules)) {
    if (k !== 'action' && k !== 'policies') fail(`${path}.${k}`, k === 'audit_logging_options' ? 'audit loggers are not supported (use action LOG)' : 'not supported');
  }
  const action = enumStr(rules.action, `${path}.action`, ['ALLOW', 'DENY', 'LOG'] as const, 'ALLOW');
  const policiesObj = rules.policies === undefined ? {} : obj(rules.policies, `${path}.policies`);
  const policies = Object.keys(policiesObj).sort().map((name) => {
    const pp = `${path}.policies["${name}"]`;
    const p = obj(policiesObj[name], pp);
    for (const k of Object.keys(p)) {
      if (k !== 'permissions' && k !== 'principals') fail(`${pp}.${k}`, k.includes('condition') ? 'CEL conditions are not supported' : 'not supported');
    }
    const perms = arr(p.permissions, `${pp}.permissions`);
    const ids = arr(p.principals, `${pp}.principals`);
    if (perms.length === 0) fail(`${pp}.permissions`, 'must not be empty');
    if (ids.length === 0) fail(`${pp}.principals`, 'must not be empty');
    return Object.freeze({
      name,
      permission: anyOf(perms.map((x, i) => compilePermission(x, `${pp}.permissions[${i}]`, scope))),
      principal: anyOf(ids.map((x, i) => compilePrincipal(x, `${pp}.principals[${i}]`, scope))),
    });
  });
  return Object.freeze({ action, policies: Object.freeze(policies) });
}

/** The name of the first policy matching the request, or undefined. May throw UnevaluableError. */
export function firstMatch(e: RbacEngine, r: AuthzInput): string | undefined {
  for (const p of e.policies) if (p.permission(r) && p.principal(r)) return p.name;
  return undefined;
}

const ALLOWED_NONE: RbacResult = Object.freeze({ allowed: true, policy: undefined });
const DENIED_NONE: RbacResult = Object.freeze({ allowed: false, policy: undefined });

/**
 * ALLOW: allowed iff a policy matches (no policy: everything is denied). DENY: denied
 * iff a policy matches. LOG: always allowed; `policy` says whether to log.
 */
export function evaluateRbac(e: RbacEngine, r: AuthzInput): RbacResult {
  const policy = firstMatch(e, r);
  if (policy === undefined) return e.action === 'ALLOW' ? DENIED_NONE : ALLOWED_NONE;
  return { allowed: e.action !== 'DENY', policy };
}
