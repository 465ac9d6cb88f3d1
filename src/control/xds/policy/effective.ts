/**
 * A Service's effective BackendPolicy settings, each with the resource that supplied
 * it, in blocks: one per Service port, plus one per attached route rule (parentRefs)
 * whose settings differ because a policy names the route or the rule, or because the
 * rule sets its own `retry` / `timeouts` (Gateway API fields, which win over policies).
 * Fields a policy leaves unset take BACKEND_POLICY_DEFAULTS, as translation does; a
 * setting no policy sets is `default` (the proxy's own defaults apply).
 *
 * The same resolver as translation (attach.ts), so what is shown is what the proxies
 * get. One implementation for both readers: `weft describe service`
 * (src/cli/describe-policy.ts) and the dashboard's service page
 * (src/control/http/dashboard-policy.ts).
 */
import { BACKEND_POLICY_DEFAULTS, BACKEND_POLICY_SETTINGS, type BackendPolicySpec } from '../../../api/backendpolicy/backendpolicy.js';
import type { ServiceSpec } from '../../../api/service/service.js';
import type { Resource } from '../../../api/types.js';
import { resolveBackendPolicy, type BackendPolicySetting, type EffectivePolicy, type PolicyTarget } from './attach.js';

/** One setting: its effective value and where it came from. */
export interface EffectiveLine {
  setting: BackendPolicySetting;
  /** undefined: no policy sets it (the proxy's defaults apply). */
  value: unknown;
  /** `backendpolicy/NS/NAME via targetRefs[i] (SPECIFICITY)`, a route's own field, or `default`. */
  source: string;
}

export interface EffectiveBlock {
  title: string;
  lines: EffectiveLine[];
}

/** The parts of an HTTPRoute / GRPCRoute spec the blocks read. */
export interface RouteLike {
  parentRefs?: { group?: string; kind?: string; name: string; namespace?: string; port?: number }[];
  rules?: { name?: string; retry?: unknown; timeouts?: unknown }[];
}

export interface RouteInput {
  kind: 'HTTPRoute' | 'GRPCRoute';
  route: Resource<RouteLike>;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `over` on top of `base`, objects merged field by field, arrays and scalars replaced. */
function withDefaults(base: unknown, over: unknown): unknown {
  if (!isObj(base) || !isObj(over)) return over === undefined ? base : over;
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = withDefaults(base[k], v);
  return out;
}

function linesOf(eff: EffectivePolicy): EffectiveLine[] {
  return BACKEND_POLICY_SETTINGS.map((key) => {
    const v = eff.settings[key];
    const s = eff.sources[key];
    const source = s === undefined ? 'default' : `backendpolicy/${s.policy.namespace}/${s.policy.name} via targetRefs[${s.targetRef}] (${s.specificity})`;
    return { setting: key, value: v === undefined ? undefined : withDefaults((BACKEND_POLICY_DEFAULTS as Obj)[key], v), source };
  });
}

const isServiceParent = (p: { group?: string; kind?: string }): boolean => (p.kind ?? 'Service') === 'Service' && (p.group === undefined || p.group === '' || p.group === 'weft.dev');

/** The HTTPRoutes and GRPCRoutes among `resources`, as effectivePolicyBlocks takes them. */
export function routeInputs(resources: readonly Resource[]): RouteInput[] {
  const out: RouteInput[] = [];
  for (const kind of ['HTTPRoute', 'GRPCRoute'] as const) {
    for (const r of resources) if (r.kind === kind) out.push({ kind, route: r as Resource<RouteLike> });
  }
  return out;
}

/** Pure: the blocks for `svc`, given every BackendPolicy and route of its namespace. */
export function effectivePolicyBlocks(svc: Resource<ServiceSpec>, policies: readonly Resource<BackendPolicySpec>[], routes: readonly RouteInput[]): EffectiveBlock[] {
  const ns = svc.metadata.namespace ?? 'default';
  const blocks: EffectiveBlock[] = [];
  for (const sp of svc.spec.ports) {
    const service: PolicyTarget['service'] = { namespace: ns, name: svc.metadata.name, port: sp.port, ...(sp.name !== undefined ? { portName: sp.name } : {}) };
    const portLabel = sp.name !== undefined ? `${sp.name} (${sp.port})` : String(sp.port);
    blocks.push({ title: `Port ${portLabel}`, lines: linesOf(resolveBackendPolicy(policies, { service })) });
    for (const { kind, route } of routes) {
      const rns = route.metadata.namespace ?? 'default';
      const attached = (route.spec.parentRefs ?? []).some((p) => isServiceParent(p) && (p.namespace ?? rns) === ns && p.name === svc.metadata.name && (p.port === undefined || p.port === sp.port));
      if (!attached) continue;
      (route.spec.rules ?? [{}]).forEach((rule, i) => {
        const eff = resolveBackendPolicy(policies, { service, route: { kind, namespace: rns, name: route.metadata.name, ...(rule.name !== undefined ? { ruleName: rule.name } : {}) } });
        const lines = linesOf(eff);
        const ref = `${kind.toLowerCase()}/${rns}/${route.metadata.name}`;
        let own = false;
        for (const l of lines) {
          // A route rule's own retry / timeouts (Gateway API) win over any policy.
          const field = l.setting === 'retry' ? rule.retry : l.setting === 'timeouts' ? rule.timeouts : undefined;
          if (field === undefined) continue;
          l.value = field;
          l.source = `${ref} rules[${i}].${l.setting} (route field, wins over policies)`;
          own = true;
        }
        const byRoute = Object.values(eff.sources).some((s) => s.specificity === 'Route' || s.specificity === 'RouteRule');
        if (!byRoute && !own) return;
        blocks.push({ title: `Port ${portLabel}, ${ref} rules[${i}]${rule.name !== undefined ? ` (${rule.name})` : ''}`, lines });
      });
    }
  }
  return blocks;
}
