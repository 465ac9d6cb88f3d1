import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { Resource } from '../../api/types.js';
import type { WorkloadSpec } from '../../api/workload/workload.js';
import { SERVICE_LABEL } from '../xds/model.js';
import { META, metaFlag, parseInboundPort, parseLabels, parsePorts, structToJson, type ProtoStruct } from './node-metadata.js';
import { INBOUND_PORT_ANNOTATION, MTLS_ANNOTATION } from '../xds/security/mesh-tls.js';

export const DEFAULT_GRACE_MS = 10_000;

/** The xDS `node` as the ADS server received it. */
export interface XdsNode {
  id: string;
  cluster?: string;
  metadata?: ProtoStruct | null;
  locality?: { region?: string; zone?: string; sub_zone?: string } | null;
}

export interface RegistrationHandle {
  namespace: string;
  name: string;
}

interface Entry {
  workload: Resource<WorkloadSpec>;
  /** Live streams holding it. */
  holders: number;
  removal?: NodeJS.Timeout;
}

export interface WorkloadRegistryOptions {
  /** How long a workload outlives its last stream (default 10 s): a reconnect within it keeps it. */
  graceMs?: number;
  onError?: (nodeId: string, err: Error) => void;
}

/**
 * Workloads registered by the proxies connected to this control plane. Kept in
 * memory (this milestone): a control-plane restart forgets them until their
 * proxies reconnect, which they do at once. Store workloads with the same
 * namespace/name win over registered ones.
 */
export class WorkloadRegistry {
  private readonly entries = new Map<string, Entry>();
  private readonly listeners = new Set<() => void>();
  private readonly connectListeners = new Set<(handle: RegistrationHandle) => void>();
  private readonly graceMs: number;
  private readonly onError: (nodeId: string, err: Error) => void;

  constructor(opts: WorkloadRegistryOptions = {}) {
    this.graceMs = opts.graceMs ?? DEFAULT_GRACE_MS;
    this.onError = opts.onError ?? (() => {});
  }

  /** Workload the node describes, or undefined when it does not describe one (a plain gRPC client). */
  static workloadOf(node: XdsNode): Resource<WorkloadSpec> | undefined {
    const meta = structToJson(node.metadata);
    const address = meta[META.address];
    if (typeof address !== 'string' || address === '') return undefined;
    if (isIP(address) === 0) throw new Error(`${META.address}: "${address}" is not an IP address`);
    const namespace = typeof meta[META.namespace] === 'string' && meta[META.namespace] !== '' ? String(meta[META.namespace]) : 'default';
    const service = typeof meta[META.service] === 'string' && meta[META.service] !== '' ? String(meta[META.service]) : undefined;
    const labels = parseLabels(meta[META.labels]);
    if (service !== undefined) labels[SERVICE_LABEL] = service;
    const explicit = meta[META.name];
    const name = typeof explicit === 'string' && explicit !== '' ? explicit : `${service ?? 'workload'}-${createHash('sha256').update(node.id).digest('hex').slice(0, 10)}`;
    const sa = meta[META.serviceAccount];
    const spec: WorkloadSpec = {
      labels,
      address,
      ports: parsePorts(meta[META.ports]),
      serviceAccount: typeof sa === 'string' && sa !== '' ? sa : 'default',
      health: 'HEALTHY',
    };
    const l = node.locality;
    if (l && (l.region || l.zone || l.sub_zone)) {
      spec.locality = {};
      if (l.region) spec.locality.region = l.region;
      if (l.zone) spec.locality.zone = l.zone;
      if (l.sub_zone) spec.locality.subzone = l.sub_zone;
    }
    const annotations: Record<string, string> = { 'weft.dev/registered-by': node.id };
    // Peers use mTLS towards it, and reach a sidecar at its inbound port (xds/security/mesh-tls.ts).
    const inbound = parseInboundPort(meta[META.inboundPort]);
    if (inbound !== undefined) annotations[INBOUND_PORT_ANNOTATION] = String(inbound);
    else if (metaFlag(meta[META.grpcMtls])) annotations[MTLS_ANNOTATION] = 'true';
    return {
      apiVersion: 'weft.dev/v1alpha1',
      kind: 'Workload',
      metadata: { name, namespace, labels: { ...labels }, annotations },
      spec,
    };
  }

  /** A stream of `node` opened. Returns the handle to release, or undefined when nothing registered. */
  connect(node: XdsNode): RegistrationHandle | undefined {
    let w: Resource<WorkloadSpec> | undefined;
    try {
      w = WorkloadRegistry.workloadOf(node);
    } catch (err) {
      this.onError(node.id, err as Error);
      return undefined;
    }
    if (w === undefined) return undefined;
    const handle = { namespace: w.metadata.namespace ?? 'default', name: w.metadata.name };
    const key = `${handle.namespace}/${handle.name}`;
    const prev = this.entries.get(key);
    if (prev !== undefined) {
      if (prev.removal !== undefined) clearTimeout(prev.removal);
      prev.removal = undefined;
      prev.holders++;
      if (JSON.stringify(prev.workload) !== JSON.stringify(w)) {
        prev.workload = w;
        this.changed();
      }
      this.connected(handle);
      return handle;
    }
    this.entries.set(key, { workload: w, holders: 1 });
    this.changed();
    this.connected(handle);
    return handle;
  }

  /** A stream ended: the workload goes after the grace period unless a stream takes it again. */
  release(handle: RegistrationHandle): void {
    const key = `${handle.namespace}/${handle.name}`;
    const e = this.entries.get(key);
    if (e === undefined) return;
    e.holders = Math.max(0, e.holders - 1);
    if (e.holders > 0) return;
    e.removal = setTimeout(() => {
      if (this.entries.get(key) === e && e.holders === 0) {
        this.entries.delete(key);
        this.changed();
      }
    }, this.graceMs);
    e.removal.unref();
  }

  list(): Resource<WorkloadSpec>[] {
    return [...this.entries.values()].map((e) => e.workload);
  }

  /** Whether a live stream holds `namespace/name` (false: in its grace period, or unknown). */
  isHeld(handle: RegistrationHandle): boolean {
    return (this.entries.get(`${handle.namespace}/${handle.name}`)?.holders ?? 0) > 0;
  }

  onChange(cb: () => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /**
   * Told on every stream that registers a workload, changed or not (a proxy
   * that reconnected here): with a shared store, this replica takes the
   * registration over (src/control/registry/leased-registrations.ts).
   */
  onConnect(cb: (handle: RegistrationHandle) => void): () => void {
    this.connectListeners.add(cb);
    return () => this.connectListeners.delete(cb);
  }

  close(): void {
    for (const e of this.entries.values()) if (e.removal !== undefined) clearTimeout(e.removal);
    this.entries.clear();
    this.listeners.clear();
    this.connectListeners.clear();
  }

  private connected(handle: RegistrationHandle): void {
    for (const cb of this.connectListeners) cb(handle);
  }

  private changed(): void {
    for (const cb of this.listeners) cb();
  }
}
