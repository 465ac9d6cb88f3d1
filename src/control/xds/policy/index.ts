import type { Resource } from '../../../api/types.js';
import type { ServiceSpec } from '../../../api/service/service.js';
import type { LoadBalancer } from '../../../api/backendpolicy/backendpolicy.js';
import { parseClusterName } from '../names.js';
import type { MeshInput } from '../model.js';
import { EMPTY_POLICY, resolveBackendPolicy, type EffectivePolicy, type PolicyTarget } from './attach.js';

/** Policy lookups for one translation of the mesh (memoised; built per snapshot). */
export class PolicyIndex {
  private readonly services = new Map<string, Resource<ServiceSpec>>();
  private readonly endpointCache = new Map<string, EffectivePolicy>();

  constructor(private readonly input: MeshInput) {
    for (const s of input.services) this.services.set(`${s.metadata.namespace ?? 'default'}/${s.metadata.name}`, s);
  }

  get empty(): boolean {
    return (this.input.backendPolicies?.length ?? 0) === 0;
  }

  resolve(target: PolicyTarget): EffectivePolicy {
    if (this.empty) return EMPTY_POLICY;
    return resolveBackendPolicy(this.input.backendPolicies ?? [], target);
  }

  /** Endpoint settings of a Service port (as a backend). */
  endpoint(namespace: string, name: string, port: number): EffectivePolicy {
    if (this.empty) return EMPTY_POLICY;
    const key = `${namespace}/${name}:${port}`;
    let hit = this.endpointCache.get(key);
    if (hit === undefined) {
      const svc = this.services.get(`${namespace}/${name}`);
      const portName = svc?.spec.ports.find((p) => p.port === port)?.name;
      hit = this.resolve({ service: { namespace, name, port, ...(portName !== undefined ? { portName } : {}) } });
      this.endpointCache.set(key, hit);
    }
    return hit;
  }

  /** Load balancer of a Weft cluster (by its name), if a policy sets one. */
  lbOf = (cluster: string): LoadBalancer | undefined => {
    const c = parseClusterName(cluster);
    return c === undefined ? undefined : this.endpoint(c.namespace, c.name, c.port).settings.loadBalancer;
  };
}
