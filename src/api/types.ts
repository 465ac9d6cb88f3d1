/** The Kubernetes-style object every kind shares. */
export interface ObjectMeta {
  name: string;
  /** Absent for cluster-scoped kinds (Mesh). */
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Set by the store: the store revision of the last write, as a decimal string. */
  resourceVersion?: string;
  /** Set by the store: 1 on create, +1 whenever `spec` changes. */
  generation?: number;
  /** Set by the store on create (RFC 3339). */
  creationTimestamp?: string;
  uid?: string;
}

export interface Resource<Spec = unknown, Status = unknown> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: Spec;
  status?: Status;
}

/** Identifies one stored object. `namespace` is '' for cluster-scoped kinds. */
export interface ResourceKey {
  kind: string;
  namespace: string;
  name: string;
}

export const DEFAULT_NAMESPACE = 'default';

export function keyOf(r: Resource): ResourceKey {
  return { kind: r.kind, namespace: r.metadata.namespace ?? '', name: r.metadata.name };
}

export function keyString(k: ResourceKey): string {
  return k.namespace === '' ? `${k.kind}/${k.name}` : `${k.kind}/${k.namespace}/${k.name}`;
}
