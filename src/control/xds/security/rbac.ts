import type { Resource } from '../../../api/types.js';
import type { AuthzCondition, AuthzOperation, AuthzRule, AuthzSource, SecurityPolicySpec } from '../../../api/securitypolicy/securitypolicy.js';
import { TYPE_PREFIX } from '../../../xds/type-urls.js';
import { spiffeUri } from '../names.js';

/**
 * SecurityPolicy `authorization` → Envoy RBAC (envoy.config.rbac.v3.RBAC), with
 * Istio's AuthorizationPolicy semantics (docs/api/README.md "SecurityPolicy"):
 *
 * - One RBAC per action, in this order in the filter chain: AUDIT (action LOG,
 *   only marks requests), DENY, then ALLOW. The ALLOW one exists as soon as any
 *   ALLOW policy covers the workload, even one with no rules: then a request that
 *   matches no ALLOW rule is denied. DENY with no rules denies nothing.
 * - Each rule is one Envoy policy named `ns.<ns>.<policy>[rule-<N>]`, so the
 *   proxy's denial (and the access log) can name the policy and the rule.
 * - A rule: `from` → principals, `to` → permissions, `when` → either side.
 *   Entries of a list are OR, fields of an entry AND, and within a field the
 *   values are OR (`not*` fields: none may match).
 *
 * | Weft                          | Envoy                                                            |
 * |-------------------------------|------------------------------------------------------------------|
 * | principals / source.principal | authenticated.principal_name: exact, `x*` prefix, `*x` suffix, `*` any (non-empty) |
 * | namespaces / source.namespace | authenticated.principal_name safe_regex `spiffe://[^/]+/ns/<ns>/sa/.*` |
 * | serviceAccounts `sa`, `ns/sa` | principal_name exact `spiffe://<trustDomain>/ns/<ns>/sa/<sa>`       |
 * | services `name`, `ns/name`    | the SPIFFE IDs of the Service's service accounts (none known: matches nothing) |
 * | methods                       | header `:method` exact                                           |
 * | paths                         | url_path exact / prefix / suffix                                 |
 * | headers / request.headers[h]  | header string_match (`*` = present)                              |
 * | ports / destination.port      | resolved when translating: every chain of the inbound listener serves one Service port (a value may be the Service port or its targetPort) |
 * | request.auth.claims[a][b]     | metadata `envoy.filters.http.jwt_authn` path [<issuer>, a, b], string or list element (one matcher per JWT provider, OR) |
 * | request.auth.audiences / presenter | claims[aud] / claims[azp]                                   |
 * | source.ip / destination.ip    | direct_remote_ip / destination_ip CIDR                           |
 *
 * What cannot be evaluated where it lands (HTTP-only fields on a TCP port;
 * `request.auth.principal`, which needs `iss/sub` joined) fails closed as Istio
 * does: in an ALLOW or AUDIT rule it never matches, in a DENY rule it is ignored
 * (so the denial is broader, never narrower).
 */

type Obj = Record<string, unknown>;
/** true: always matches; false: never; an object: an Envoy Permission or Principal. */
type M = boolean | Obj;

export type RbacAction = 'ALLOW' | 'DENY' | 'AUDIT';
export const RBAC_HTTP_TYPE = `${TYPE_PREFIX}envoy.extensions.filters.http.rbac.v3.RBAC`;
export const RBAC_PER_ROUTE_TYPE = `${TYPE_PREFIX}envoy.extensions.filters.http.rbac.v3.RBACPerRoute`;
export const RBAC_NETWORK_TYPE = `${TYPE_PREFIX}envoy.extensions.filters.network.rbac.v3.RBAC`;
export const JWT_METADATA_NAMESPACE = 'envoy.filters.http.jwt_authn';

/** Filter names, one per action (distinct, so a virtual host can override each). */
export const RBAC_FILTER_NAMES: Record<RbacAction, string> = {
  AUDIT: 'envoy.filters.http.rbac.audit',
  DENY: 'envoy.filters.http.rbac.deny',
  ALLOW: 'envoy.filters.http.rbac.allow',
};
export const RBAC_NETWORK_FILTER_NAMES: Record<RbacAction, string> = {
  AUDIT: 'envoy.filters.network.rbac.audit',
  DENY: 'envoy.filters.network.rbac.deny',
  ALLOW: 'envoy.filters.network.rbac.allow',
};
const ENVOY_ACTION: Record<RbacAction, string> = { AUDIT: 'LOG', DENY: 'DENY', ALLOW: 'ALLOW' };
const ORDER: readonly RbacAction[] = ['AUDIT', 'DENY', 'ALLOW'];

export interface RbacContext {
  trustDomain: string;
  /** Where the rules run: HTTP-only fields cannot be evaluated on `tcp`. */
  protocol: 'http' | 'tcp';
  /** The Service port the chain serves and its targetPort (`ports`, `destination.port`). */
  port: number;
  targetPort: number;
  /** Metadata keys under which jwt_authn stores verified payloads (one per provider; none: no claims). */
  jwtPayloadKeys: readonly string[];
  /** SPIFFE IDs of a calling Service, or undefined when it does not exist. */
  serviceIds: (namespace: string, name: string) => readonly string[] | undefined;
}

/** One envoy.config.rbac.v3.RBAC per action present, in filter order (AUDIT, DENY, ALLOW). */
export interface RbacSet {
  action: RbacAction;
  rules: Obj;
}

// ---------------------------------------------------------------------------
// Boolean algebra over Envoy matchers (Permission and Principal share shapes)

interface Shape {
  and: string;
  or: string;
  list: string;
  not: string;
}
const PERM: Shape = { and: 'and_rules', or: 'or_rules', list: 'rules', not: 'not_rule' };
const ID: Shape = { and: 'and_ids', or: 'or_ids', list: 'ids', not: 'not_id' };

function and(s: Shape, ms: readonly M[]): M {
  if (ms.some((m) => m === false)) return false;
  const live = ms.filter((m): m is Obj => m !== true);
  if (live.length === 0) return true;
  if (live.length === 1) return live[0] as Obj;
  return { [s.and]: { [s.list]: live } };
}

function or(s: Shape, ms: readonly M[]): M {
  if (ms.some((m) => m === true)) return true;
  const live = ms.filter((m): m is Obj => m !== false);
  if (live.length === 0) return false;
  if (live.length === 1) return live[0] as Obj;
  return { [s.or]: { [s.list]: live } };
}

function not(s: Shape, m: M): M {
  if (typeof m === 'boolean') return !m;
  return { [s.not]: m };
}

/** `values` (any) and not `notValues` (none); a field left out matches. */
function field<T>(s: Shape, values: readonly T[] | undefined, notValues: readonly T[] | undefined, one: (v: T) => M): M {
  const parts: M[] = [];
  if (values !== undefined) parts.push(or(s, values.map(one)));
  if (notValues !== undefined) parts.push(not(s, or(s, notValues.map(one))));
  return and(s, parts);
}

function toEnvoy(m: Obj | true): Obj {
  return m === true ? { any: true } : m;
}

// ---------------------------------------------------------------------------
// Leaves

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** `*` alone: any non-empty value; `x*`: prefix; `*x`: suffix; else exact. */
export function wildcardMatcher(v: string): Obj {
  if (v === '*') return { safe_regex: { google_re2: {}, regex: '.+' } };
  if (v.endsWith('*')) return { prefix: v.slice(0, -1) };
  if (v.startsWith('*')) return { suffix: v.slice(1) };
  return { exact: v };
}

function principalName(matcher: Obj): Obj {
  return { authenticated: { principal_name: matcher } };
}

function namespacePrincipal(ns: string): Obj {
  const part = ns === '*' ? '[^/]+' : ns.startsWith('*') ? `[^/]*${escapeRe(ns.slice(1))}` : ns.endsWith('*') ? `${escapeRe(ns.slice(0, -1))}[^/]*` : escapeRe(ns);
  return principalName({ safe_regex: { google_re2: {}, regex: `spiffe://[^/]+/ns/${part}/sa/.*` } });
}

function header(name: string, value: string): Obj {
  const h = name.toLowerCase();
  return { header: value === '*' ? { name: h, present_match: true } : { name: h, string_match: wildcardMatcher(value) } };
}

function cidr(v: string): Obj {
  const [ip, len] = v.split('/');
  const prefix = len !== undefined ? Number(len) : (ip ?? '').includes(':') ? 128 : 32;
  return { address_prefix: ip ?? v, prefix_len: { value: prefix } };
}

/** `ns/name` or `name` (in the policy's namespace). */
function qualified(v: string, policyNs: string): [string, string] {
  const i = v.indexOf('/');
  return i < 0 ? [policyNs, v] : [v.slice(0, i), v.slice(i + 1)];
}

// ---------------------------------------------------------------------------
// Rules

interface RuleEnv {
  ctx: RbacContext;
  policyNs: string;
  action: RbacAction;
}

/** What a field that cannot be evaluated here becomes: ignored in DENY, never matching otherwise. */
function unsupported(env: RuleEnv): M {
  return env.action === 'DENY';
}

function httpOnly(env: RuleEnv, m: () => M): M {
  return env.ctx.protocol === 'tcp' ? unsupported(env) : m();
}

function sourceMatcher(f: AuthzSource, env: RuleEnv): M {
  const { ctx, policyNs } = env;
  const parts: M[] = [
    field(ID, f.principals, f.notPrincipals, (p) => principalName(wildcardMatcher(p))),
    field(ID, f.namespaces, f.notNamespaces, namespacePrincipal),
  ];
  if (f.serviceAccounts !== undefined) {
    parts.push(or(ID, f.serviceAccounts.map((v) => {
      const [ns, sa] = qualified(v, policyNs);
      return principalName({ exact: spiffeUri(ctx.trustDomain, ns, sa) });
    })));
  }
  if (f.services !== undefined) {
    parts.push(or(ID, f.services.map((v) => {
      const [ns, name] = qualified(v, policyNs);
      return or(ID, (ctx.serviceIds(ns, name) ?? []).map((id) => principalName({ exact: id })));
    })));
  }
  return and(ID, parts);
}

function portMatches(ctx: RbacContext, p: number): boolean {
  return p === ctx.port || p === ctx.targetPort;
}

function operationMatcher(t: AuthzOperation, env: RuleEnv): M {
  const { ctx } = env;
  const method = (m: string): M => (m === '*' ? true : { header: { name: ':method', string_match: { exact: m } } });
  const path = (p: string): M => (p === '*' ? true : { url_path: { path: wildcardMatcher(p) } });
  const parts: M[] = [];
  if (t.methods !== undefined || t.notMethods !== undefined) parts.push(httpOnly(env, () => field(PERM, t.methods, t.notMethods, method)));
  if (t.paths !== undefined || t.notPaths !== undefined) parts.push(httpOnly(env, () => field(PERM, t.paths, t.notPaths, path)));
  if (t.ports !== undefined) parts.push(t.ports.some((p) => portMatches(ctx, p)));
  for (const h of t.headers ?? []) parts.push(httpOnly(env, () => or(PERM, h.values.map((v) => header(h.name, v)))));
  return and(PERM, parts);
}

/** `request.auth.claims[a][b]` → ['a', 'b']; undefined for other keys. */
function claimPath(key: string): string[] | undefined {
  if (key === 'request.auth.audiences') return ['aud'];
  if (key === 'request.auth.presenter') return ['azp'];
  if (!key.startsWith('request.auth.claims[')) return undefined;
  return [...key.slice('request.auth.claims'.length).matchAll(/\[([^\]]+)\]/g)].map((m) => m[1] ?? '');
}

function claimMatcher(ctx: RbacContext, path: readonly string[], value: string): M {
  const sm = wildcardMatcher(value);
  return or(ID, ctx.jwtPayloadKeys.map((k) => {
    const meta = (v: Obj): Obj => ({ metadata: { filter: JWT_METADATA_NAMESPACE, path: [k, ...path].map((key) => ({ key })), value: v } });
    // A claim may be a string or a list of strings (aud often is).
    return { or_ids: { ids: [meta({ string_match: sm }), meta({ list_match: { one_of: { string_match: sm } } })] } };
  }));
}

/** A `when` condition, as a principal (side 'id') or a permission (side 'perm'). */
function conditionMatcher(c: AuthzCondition, env: RuleEnv): { side: 'id' | 'perm'; m: M } {
  const { ctx } = env;
  const key = c.key;
  const header = /^request\.headers\[([^\]]+)\]$/.exec(key)?.[1];
  if (header !== undefined) return { side: 'id', m: httpOnly(env, () => field(ID, c.values, c.notValues, (v) => headerOf(header, v))) };
  const claims = claimPath(key);
  if (claims !== undefined) return { side: 'id', m: httpOnly(env, () => field(ID, c.values, c.notValues, (v) => claimMatcher(ctx, claims, v))) };
  switch (key) {
    case 'source.principal':
      return { side: 'id', m: field(ID, c.values, c.notValues, (v) => principalName(wildcardMatcher(v))) };
    case 'source.namespace':
      return { side: 'id', m: field(ID, c.values, c.notValues, namespacePrincipal) };
    case 'source.ip':
      return { side: 'id', m: field(ID, c.values, c.notValues, (v) => ({ direct_remote_ip: cidr(v) })) };
    case 'destination.ip':
      return { side: 'perm', m: field(PERM, c.values, c.notValues, (v) => ({ destination_ip: cidr(v) })) };
    case 'destination.port':
      return { side: 'perm', m: field(PERM, c.values, c.notValues, (v) => portMatches(ctx, Number(v))) };
    default:
      // request.auth.principal (iss/sub joined) has no Envoy matcher without a helper filter.
      return { side: 'id', m: unsupported(env) };
  }
}

function headerOf(name: string, value: string): Obj {
  return header(name, value);
}

/** One rule → an Envoy Policy, or undefined when it can never match. */
export function rulePolicy(rule: AuthzRule, env: RuleEnv): Obj | undefined {
  const ids: M[] = [rule.from === undefined ? true : or(ID, rule.from.map((f) => sourceMatcher(f, env)))];
  const perms: M[] = [rule.to === undefined ? true : or(PERM, rule.to.map((t) => operationMatcher(t, env)))];
  for (const c of rule.when ?? []) {
    const { side, m } = conditionMatcher(c, env);
    (side === 'id' ? ids : perms).push(m);
  }
  const principal = and(ID, ids);
  const permission = and(PERM, perms);
  if (principal === false || permission === false) return undefined;
  return { permissions: [toEnvoy(permission)], principals: [toEnvoy(principal)] };
}

export function rulePolicyName(p: Resource, ruleIndex: number): string {
  return `ns.${p.metadata.namespace ?? 'default'}.${p.metadata.name}[rule-${ruleIndex}]`;
}

/**
 * The RBAC configs for one filter chain, from the policies covering the
 * workload (oldest first). Empty when no policy has `authorization`.
 */
export function buildRbac(policies: readonly Resource<SecurityPolicySpec>[], ctx: RbacContext): RbacSet[] {
  const byAction = new Map<RbacAction, Obj>();
  for (const p of policies) {
    const a = p.spec.authorization;
    if (a === undefined) continue;
    const action = a.action;
    let policiesOut = byAction.get(action);
    if (policiesOut === undefined) {
      policiesOut = {};
      byAction.set(action, policiesOut);
    }
    const env: RuleEnv = { ctx, policyNs: p.metadata.namespace ?? 'default', action };
    a.rules.forEach((rule, i) => {
      const out = rulePolicy(rule, env);
      if (out !== undefined) (policiesOut as Obj)[rulePolicyName(p, i)] = out;
    });
  }
  return ORDER.filter((a) => byAction.has(a)).map((action) => ({ action, rules: { action: ENVOY_ACTION[action], policies: byAction.get(action) ?? {} } }));
}

/** HTTP filters (envoy.filters.http.rbac) for an RbacSet, in order. */
export function rbacHttpFilters(set: readonly RbacSet[]): Obj[] {
  return set.map((s) => ({ name: RBAC_FILTER_NAMES[s.action], typed_config: { '@type': RBAC_HTTP_TYPE, rules: s.rules } }));
}

/** Per-virtual-host overrides (RBACPerRoute) keyed by filter name. */
export function rbacPerRoute(set: readonly RbacSet[]): Obj {
  const out: Obj = {};
  for (const s of set) out[RBAC_FILTER_NAMES[s.action]] = { '@type': RBAC_PER_ROUTE_TYPE, rbac: { rules: s.rules } };
  return out;
}

/** Network filters (envoy.filters.network.rbac) for a TCP chain, in order. */
export function rbacNetworkFilters(set: readonly RbacSet[], statPrefix: string): Obj[] {
  return set.map((s) => ({ name: RBAC_NETWORK_FILTER_NAMES[s.action], typed_config: { '@type': RBAC_NETWORK_TYPE, stat_prefix: `${statPrefix}.${s.action.toLowerCase()}`, rules: s.rules } }));
}
