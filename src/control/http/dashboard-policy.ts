// GET /ui/api/policy/NAMESPACE/NAME: a Service's effective BackendPolicy settings,
// each with the resource that supplied it, for the dashboard's service page. The
// same resolver as translation (src/control/xds/policy/attach.ts), so what the
// page shows is what the proxies get; the same blocks as `weft describe service`
// (src/cli/describe-policy.ts, which control/ may not import: hence this copy of
// its few lines of block logic, kept to the same rules).
import { BACKEND_POLICY_DEFAULTS, BACKEND_POLICY_SETTINGS, type BackendPolicySpec } from '../../api/backendpolicy/backendpolicy.js';
import type { ServiceSpec } from '../../api/service/service.js';
import type { Resource } from '../../api/types.js';
import { WeftError } from '../../lib/errors.js';
import type { ConfigStore } from '../../store/types.js';
import { resolveBackendPolicy, type BackendPolicySetting, type EffectivePolicy, type PolicyTarget } from '../xds/policy/attach.js';

export interface EffectiveLine {
  setting: BackendPolicySetting;
  /** undefined: no policy sets it (the proxy's defaults apply). */
  value?: unknown;
  /** `backendpolicy/NS/NAME via targetRefs[i] (SPECIFICITY)`, a route's own field, or `default`. */
  source: string;
}

export interface EffectiveBlock {
  title: string;
  lines: EffectiveLine[];
}

interface RouteLike {
  parentRefs?: { group?: string; kind?: string; name: string; namespace?: string; port?: number }[];
  rules?: { name?: string; retry?: unknown; timeouts?: unknown }[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `over` on top of `base`, objects merged field by field (as translation fills defaults). */
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
    return v === undefined ? { setting: key, source } : { setting: key, value: withDefaults((BACKEND_POLICY_DEFAULTS as Obj)[key], v), source };
  });
}

const isServiceParent = (p: { group?: string; kind?: string }): boolean => (p.kind ?? 'Service') === 'Service' && (p.group === undefined || p.group === '' || p.group === 'weft.dev');

/** One block per Service port, plus one per attached route rule whose settings differ because of the route. */
export function effectivePolicyBlocks(svc: Resource<ServiceSpec>, policies: readonly Resource<BackendPolicySpec>[], routes: readonly { kind: 'HTTPRoute' | 'GRPCRoute'; route: Resource<RouteLike> }[]): EffectiveBlock[] {
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

/** Reads the Service, the namespace's BackendPolicies and routes from the store. */
export async function effectivePolicyOf(store: ConfigStore, namespace: string, name: string): Promise<{ namespace: string; name: string; blocks: EffectiveBlock[] }> {
  const svc = await store.get({ kind: 'Service', namespace, name });
  if (svc === undefined) throw new WeftError('WEFT_ERR_NOT_FOUND', `service ${namespace}/${name} not found`);
  const all = await store.list({ namespace });
  const of = (kind: string): Resource[] => all.items.filter((r) => r.kind === kind);
  const routes = [
    ...of('HTTPRoute').map((route) => ({ kind: 'HTTPRoute' as const, route: route as Resource<RouteLike> })),
    ...of('GRPCRoute').map((route) => ({ kind: 'GRPCRoute' as const, route: route as Resource<RouteLike> })),
  ];
  return { namespace, name, blocks: effectivePolicyBlocks(svc as Resource<ServiceSpec>, of('BackendPolicy') as Resource<BackendPolicySpec>[], routes) };
}
