import type { KindDescriptor } from '../api/descriptor.js';
import { kinds } from '../api/registry.js';
import type { Resource } from '../api/types.js';
import { BACKEND_POLICY_DEFAULTS, BACKEND_POLICY_SETTINGS, type BackendPolicySpec } from '../api/backendpolicy/backendpolicy.js';
import type { ServiceSpec } from '../api/service/service.js';
import { resolveBackendPolicy, type BackendPolicySetting, type EffectivePolicy, type PolicyTarget } from '../control/xds/policy/attach.js';
import type { ApiClient } from './client.js';

/**
 * `weft describe service NAME`: the "Effective policy" block. For each Service
 * port, and for each route rule attached to it (parentRefs) whose policy differs
 * because a BackendPolicy names the route or the rule, every BackendPolicy
 * setting with its effective value (fields left unset take
 * BACKEND_POLICY_DEFAULTS, as translation does) and the resource that supplied
 * it: `backendpolicy/NS/NAME via targetRefs[i] (SPECIFICITY)`, or `default`
 * when no policy sets it (then the proxy's own defaults apply: e.g. no retries,
 * no outlier detection). A route rule's own `retry` / `timeouts` (Gateway API)
 * win over a policy's; they are shown as the route's.
 *
 * The same resolver as the control plane (src/control/xds/policy/attach.ts), so
 * what is printed is what the proxies get.
 */

type Obj = Record<string, unknown>;

interface RouteLike {
  parentRefs?: { group?: string; kind?: string; name: string; namespace?: string; port?: number }[];
  rules?: { name?: string; retry?: unknown; timeouts?: unknown }[];
}

/** One line per setting: `NAME  VALUE  from SOURCE`. */
export interface EffectiveLine {
  setting: BackendPolicySetting;
  value: unknown;
  source: string;
}

export interface EffectiveBlock {
  title: string;
  lines: EffectiveLine[];
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `over` on top of `base`, objects merged field by field, arrays and scalars replaced. */
function withDefaults(base: unknown, over: unknown): unknown {
  if (!isObj(base) || !isObj(over)) return over === undefined ? base : over;
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = withDefaults(base[k], v);
  return out;
}

function sourceOf(eff: EffectivePolicy, key: BackendPolicySetting): string {
  const s = eff.sources[key];
  if (s === undefined) return 'default';
  return `backendpolicy/${s.policy.namespace}/${s.policy.name} via targetRefs[${s.targetRef}] (${s.specificity})`;
}

function linesOf(eff: EffectivePolicy): EffectiveLine[] {
  return BACKEND_POLICY_SETTINGS.map((key) => {
    const v = eff.settings[key];
    const d = (BACKEND_POLICY_DEFAULTS as Record<string, unknown>)[key];
    return { setting: key, value: v === undefined ? undefined : withDefaults(d, v), source: sourceOf(eff, key) };
  });
}

function isServiceParent(p: { group?: string; kind?: string }): boolean {
  return (p.kind ?? 'Service') === 'Service' && (p.group === undefined || p.group === '' || p.group === 'weft.dev');
}

/** Pure: the blocks for `svc`, given every BackendPolicy and route of its namespace. */
export function effectivePolicyBlocks(
  svc: Resource<ServiceSpec>,
  policies: readonly Resource<BackendPolicySpec>[],
  routes: readonly { kind: 'HTTPRoute' | 'GRPCRoute'; route: Resource<RouteLike> }[],
): EffectiveBlock[] {
  const ns = svc.metadata.namespace ?? 'default';
  const blocks: EffectiveBlock[] = [];
  for (const sp of svc.spec.ports) {
    const service: PolicyTarget['service'] = { namespace: ns, name: svc.metadata.name, port: sp.port, ...(sp.name !== undefined ? { portName: sp.name } : {}) };
    const portLabel = sp.name !== undefined ? `${sp.name} (${sp.port})` : String(sp.port);
    blocks.push({ title: `Port ${portLabel}`, lines: linesOf(resolveBackendPolicy(policies, { service })) });
    for (const { kind, route } of routes) {
      const rns = route.metadata.namespace ?? 'default';
      const attached = (route.spec.parentRefs ?? []).some(
        (p) => isServiceParent(p) && (p.namespace ?? rns) === ns && p.name === svc.metadata.name && (p.port === undefined || p.port === sp.port),
      );
      if (!attached) continue;
      (route.spec.rules ?? [{}]).forEach((rule, i) => {
        const target: PolicyTarget = { service, route: { kind, namespace: rns, name: route.metadata.name, ...(rule.name !== undefined ? { ruleName: rule.name } : {}) } };
        const eff = resolveBackendPolicy(policies, target);
        const lines = linesOf(eff);
        const routeRef = `${kind.toLowerCase()}/${rns}/${route.metadata.name}`;
        let own = false;
        for (const l of lines) {
          if (l.setting === 'retry' && rule.retry !== undefined) {
            l.value = rule.retry;
            l.source = `${routeRef} rules[${i}].retry (route field, wins over policies)`;
            own = true;
          } else if (l.setting === 'timeouts' && rule.timeouts !== undefined) {
            l.value = rule.timeouts;
            l.source = `${routeRef} rules[${i}].timeouts (route field, wins over policies)`;
            own = true;
          }
        }
        const byRoute = Object.values(eff.sources).some((s) => s.specificity === 'Route' || s.specificity === 'RouteRule');
        if (!byRoute && !own) return;
        const ruleLabel = rule.name !== undefined ? `rules[${i}] (${rule.name})` : `rules[${i}]`;
        blocks.push({ title: `Port ${portLabel}, ${routeRef} ${ruleLabel}`, lines });
      });
    }
  }
  return blocks;
}

export function formatEffectiveBlocks(blocks: readonly EffectiveBlock[]): string {
  const width = Math.max(...BACKEND_POLICY_SETTINGS.map((k) => k.length)) + 2;
  return blocks
    .map((b) => `${b.title}:\n${b.lines.map((l) => `  ${`${l.setting}:`.padEnd(width)}${l.value === undefined ? '<unset>' : JSON.stringify(l.value)}  from ${l.source}\n`).join('')}`)
    .join('');
}

async function listOr(client: ApiClient, kind: string, namespace: string): Promise<Resource[]> {
  const d = kinds.lookup(kind);
  if (d === undefined) return [];
  return (await client.list(d, { namespace })).items;
}

/** The describe section (registered by commands/describe.ts). */
export const effectivePolicySection = {
  title: 'Effective policy',
  appliesTo: (d: KindDescriptor): boolean => d.kind === 'Service',
  async render(ctx: { object: Resource; client: ApiClient }): Promise<string | undefined> {
    const svc = ctx.object as Resource<ServiceSpec>;
    const ns = svc.metadata.namespace ?? 'default';
    let policies: Resource[], http: Resource[], grpc: Resource[];
    try {
      [policies, http, grpc] = await Promise.all([
        listOr(ctx.client, 'BackendPolicy', ns),
        listOr(ctx.client, 'HTTPRoute', ns),
        listOr(ctx.client, 'GRPCRoute', ns),
      ]);
    } catch (e) {
      // The object itself was shown; say why this part is missing rather than fail.
      return `<unavailable: ${e instanceof Error ? e.message : String(e)}>`;
    }
    const routes = [
      ...http.map((route) => ({ kind: 'HTTPRoute' as const, route: route as Resource<RouteLike> })),
      ...grpc.map((route) => ({ kind: 'GRPCRoute' as const, route: route as Resource<RouteLike> })),
    ];
    const blocks = effectivePolicyBlocks(svc, policies as Resource<BackendPolicySpec>[], routes);
    return blocks.length === 0 ? undefined : formatEffectiveBlocks(blocks).trimEnd();
  },
};
