import type { KindDescriptor } from '../api/descriptor.js';
import { kinds } from '../api/registry.js';
import type { Resource } from '../api/types.js';
import { BACKEND_POLICY_SETTINGS, type BackendPolicySpec } from '../api/backendpolicy/backendpolicy.js';
import type { ServiceSpec } from '../api/service/service.js';
import { effectivePolicyBlocks, routeInputs, type EffectiveBlock } from '../control/xds/policy/effective.js';
import type { ApiClient } from './client.js';

/**
 * `weft describe service NAME`: the "Effective policy" block. The blocks (per Service
 * port, and per attached route rule whose policy differs) come from
 * src/control/xds/policy/effective.ts, the same code as the dashboard's service page,
 * on the same resolver as translation, so what is printed is what the proxies get.
 * Each line: the setting, its effective value, and the resource that supplied it
 * (`backendpolicy/NS/NAME via targetRefs[i] (SPECIFICITY)`, a route rule's own
 * retry / timeouts, or `default` when no policy sets it).
 */

export { effectivePolicyBlocks };
export type { EffectiveBlock, EffectiveLine } from '../control/xds/policy/effective.js';

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
    const blocks = effectivePolicyBlocks(svc, policies as Resource<BackendPolicySpec>[], routeInputs([...http, ...grpc]));
    return blocks.length === 0 ? undefined : formatEffectiveBlocks(blocks).trimEnd();
  },
};
