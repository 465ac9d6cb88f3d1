import type { Resource } from '../../../api/types.js';
import type { ServiceSpec } from '../../../api/service/service.js';
import type { WorkloadSpec } from '../../../api/workload/workload.js';
import type { MtlsMode } from '../../../api/mesh/mesh.js';
import type { SecurityPolicySpec } from '../../../api/securitypolicy/securitypolicy.js';
import { spiffeUri, type ServiceRef } from '../names.js';
import { workloadsOf, type MeshInput } from '../model.js';

/**
 * What the security translation reads: MeshInput, whose `mesh` (the Mesh
 * named `default`) and `securityPolicies` are both optional, so an input
 * without them translates as a mesh with defaults and no policy. The snapshot
 * cache fills both from the store. (Kept as a name: tests and callers use it.)
 */
export type SecurityMeshInput = MeshInput;

export type OutboundPolicy = 'ALLOW_ANY' | 'REGISTRY_ONLY';

export interface MeshSettings {
  trustDomain: string;
  mtlsMode: MtlsMode;
  outboundPolicy: OutboundPolicy;
}

export const MESH_DEFAULTS: MeshSettings = Object.freeze({ trustDomain: 'cluster.local', mtlsMode: 'PERMISSIVE', outboundPolicy: 'ALLOW_ANY' });

export function meshSettings(input: MeshInput): MeshSettings {
  const spec = input.mesh?.spec;
  return {
    trustDomain: spec?.trustDomain ?? MESH_DEFAULTS.trustDomain,
    mtlsMode: spec?.mtls?.mode ?? MESH_DEFAULTS.mtlsMode,
    outboundPolicy: spec?.outboundPolicy ?? MESH_DEFAULTS.outboundPolicy,
  };
}

function olderFirst(a: Resource, b: Resource): number {
  const at = a.metadata.creationTimestamp ?? '';
  const bt = b.metadata.creationTimestamp ?? '';
  // Not stored yet (no timestamp) counts as the newest, as in policy/attach.ts.
  if (at !== bt) return at === '' ? 1 : bt === '' ? -1 : at < bt ? -1 : 1;
  return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
}

/** How a policy selects a Service: by name, by its namespace, or not at all. */
export function selects(p: Resource<SecurityPolicySpec>, svc: ServiceRef): 'Service' | 'Namespace' | undefined {
  const ns = p.metadata.namespace ?? 'default';
  if (ns !== svc.namespace) return undefined;
  const refs = p.spec.targetRefs ?? [];
  if (refs.length === 0) return 'Namespace';
  if (refs.some((r) => r.kind === 'Service' && r.name === svc.name)) return 'Service';
  if (refs.some((r) => r.kind === 'Namespace' && r.name === ns)) return 'Namespace';
  return undefined;
}

/** The SecurityPolicies that cover a Service, oldest first. */
export function policiesFor(input: MeshInput, svc: ServiceRef): Resource<SecurityPolicySpec>[] {
  return (input.securityPolicies ?? []).filter((p) => selects(p, svc) !== undefined).sort(olderFirst);
}

export interface EffectiveMtls {
  mode: MtlsMode;
  /** `Mesh/default`, or `SecurityPolicy/<ns>/<name>`. */
  source: string;
}

/** mTLS mode of a Service: a policy naming the Service > a namespace-wide policy > the Mesh (oldest wins among equals). */
export function mtlsModeFor(input: MeshInput, svc: ServiceRef): EffectiveMtls {
  const ps = policiesFor(input, svc).filter((p) => p.spec.mtls !== undefined);
  const pick = ps.find((p) => selects(p, svc) === 'Service') ?? ps[0];
  if (pick?.spec.mtls !== undefined) return { mode: pick.spec.mtls.mode, source: `SecurityPolicy/${pick.metadata.namespace ?? 'default'}/${pick.metadata.name}` };
  return { mode: meshSettings(input).mtlsMode, source: 'Mesh/default' };
}

/** Service accounts a Service runs as: `spec.serviceAccounts`, else those of its workloads. Sorted, unique. */
export function serviceAccountsOf(svc: Resource<ServiceSpec>, workloads: readonly Resource<WorkloadSpec>[]): string[] {
  const listed = svc.spec.serviceAccounts ?? [];
  const sas = listed.length > 0 ? listed : workloadsOf(svc, workloads).map((w) => w.spec.serviceAccount ?? 'default');
  return [...new Set(sas)].sort();
}

/** SPIFFE IDs a Service's workloads present (what a client checks the server's certificate against). */
export function spiffeIdsOf(input: MeshInput, svc: Resource<ServiceSpec>): string[] {
  const td = meshSettings(input).trustDomain;
  const ns = svc.metadata.namespace ?? 'default';
  return serviceAccountsOf(svc, input.workloads).map((sa) => spiffeUri(td, ns, sa));
}

export function findService(input: MeshInput, ref: ServiceRef): Resource<ServiceSpec> | undefined {
  return input.services.find((s) => s.metadata.name === ref.name && (s.metadata.namespace ?? 'default') === ref.namespace);
}
