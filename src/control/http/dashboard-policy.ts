// GET /ui/api/policy/NAMESPACE/NAME: a Service's effective BackendPolicy settings,
// each with the resource that supplied it, for the dashboard's service page. The
// blocks are those of `weft describe service` (one implementation:
// src/control/xds/policy/effective.ts); this file only reads the store.
import type { BackendPolicySpec } from '../../api/backendpolicy/backendpolicy.js';
import type { ServiceSpec } from '../../api/service/service.js';
import type { Resource } from '../../api/types.js';
import { WeftError } from '../../lib/errors.js';
import type { ConfigStore } from '../../store/types.js';
import { effectivePolicyBlocks, routeInputs, type EffectiveBlock } from '../xds/policy/effective.js';

export type { EffectiveBlock, EffectiveLine } from '../xds/policy/effective.js';

/** Reads the Service, the namespace's BackendPolicies and routes from the store. */
export async function effectivePolicyOf(store: ConfigStore, namespace: string, name: string): Promise<{ namespace: string; name: string; blocks: EffectiveBlock[] }> {
  const svc = await store.get({ kind: 'Service', namespace, name });
  if (svc === undefined) throw new WeftError('WEFT_ERR_NOT_FOUND', `service ${namespace}/${name} not found`);
  const all = await store.list({ namespace });
  const policies = all.items.filter((r) => r.kind === 'BackendPolicy') as Resource<BackendPolicySpec>[];
  return { namespace, name, blocks: effectivePolicyBlocks(svc as Resource<ServiceSpec>, policies, routeInputs(all.items)) };
}
