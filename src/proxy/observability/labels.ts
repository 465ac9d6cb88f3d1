/**
 * Istio's metric labels for this proxy's traffic. Who the proxy is comes from its
 * node metadata (service, namespace, workload name) and its SVID; who the peer is
 * comes from the downstream TLS peer on inbound, and from the cluster name
 * (`outbound|PORT||svc.ns`) on outbound. Every value is bounded (no paths, no
 * addresses); what is not known is "unknown", as Istio writes it.
 *
 * The part of the label string that depends on the peer only is built once per
 * peer and cached; a request adds its code, flags and gRPC status.
 */
import { createHash } from 'node:crypto';
import type { ResponseFlag } from '../local-reply.js';
import type { HttpSeries } from './metrics.js';

const UNKNOWN = 'unknown';

export interface SelfIdentity {
  /** `svc.ns`, the Service host name; "unknown" without workload metadata. */
  readonly service: string;
  readonly namespace: string;
  /** The registered Workload's name (WEFT_WORKLOAD_NAME, else the control plane's default). */
  readonly workload: string;
}

export const UNKNOWN_SELF: SelfIdentity = Object.freeze({ service: UNKNOWN, namespace: UNKNOWN, workload: UNKNOWN });

/**
 * From the xDS node. The workload name follows the control plane's rule
 * (control/registry/workload-registry.ts: `<service>-<sha256(node id)[0..10]>`),
 * repeated here because proxy/ must not import control/.
 */
export function selfIdentityOf(node: { id: string; metadata: Readonly<Record<string, unknown>> }): SelfIdentity {
  const str = (k: string): string | undefined => (typeof node.metadata[k] === 'string' && node.metadata[k] !== '' ? (node.metadata[k] as string) : undefined);
  const service = str('WEFT_SERVICE');
  if (service === undefined) return UNKNOWN_SELF;
  const namespace = str('WEFT_NAMESPACE') ?? 'default';
  const workload = str('WEFT_WORKLOAD_NAME') ?? `${service}-${createHash('sha256').update(node.id).digest('hex').slice(0, 10)}`;
  return Object.freeze({ service: `${service}.${namespace}`, namespace, workload });
}

export function escapeLabel(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** `spiffe://td/ns/NS/sa/SA` → NS. */
export function namespaceOfPrincipal(p: string | undefined): string | undefined {
  if (p === undefined) return undefined;
  const m = /\/ns\/([^/]+)\/sa\//.exec(p);
  return m?.[1];
}

/** `outbound|8080||catalog.shop` → { service: 'catalog.shop', namespace: 'shop' }. */
export function serviceOfCluster(cluster: string): { service: string; namespace: string } | undefined {
  if (!cluster.startsWith('outbound|')) return undefined;
  const host = cluster.slice(cluster.lastIndexOf('|') + 1);
  const dot = host.indexOf('.');
  if (dot <= 0) return undefined;
  const ns = host.slice(dot + 1).split('.')[0]!;
  return { service: host.slice(0, dot) + '.' + ns, namespace: ns };
}

interface LabelValues {
  reporter: 'source' | 'destination';
  source_workload: string;
  source_namespace: string;
  source_principal: string;
  destination_service: string;
  destination_workload: string;
  destination_namespace: string;
  destination_principal: string;
  connection_security_policy: string;
}

function join(v: LabelValues): string {
  return `reporter="${v.reporter}",source_workload="${escapeLabel(v.source_workload)}",source_namespace="${escapeLabel(v.source_namespace)}",source_principal="${escapeLabel(v.source_principal)}",destination_service="${escapeLabel(v.destination_service)}",destination_workload="${escapeLabel(v.destination_workload)}",destination_namespace="${escapeLabel(v.destination_namespace)}",destination_principal="${escapeLabel(v.destination_principal)}",connection_security_policy="${v.connection_security_policy}"`;
}

/** What a request or connection knows about where it came from and went. */
export interface TrafficPeer {
  /** INBOUND listeners report as destination, the rest as source. */
  readonly inbound: boolean;
  /** Inbound: the verified client SPIFFE ID; outbound: the upstream's, when known. */
  readonly peerPrincipal: string | undefined;
  /** Inbound: the downstream connection is TLS. */
  readonly tls: boolean;
  /** Outbound: the cluster the request went to (undefined: none, e.g. NR). */
  readonly cluster: string | undefined;
  /** Inbound TLS: the SPIFFE ID of the certificate this proxy presented (else its identity's). */
  readonly localPrincipal?: string | undefined;
}

const MAX_CACHED = 4096;

/** A peer's label prefix, and its series by the per-request part (`code|flags|grpc`). */
export interface PeerEntry {
  readonly prefix: string;
  readonly http: Map<string, HttpSeries>;
}

/** Label prefixes by peer, cached (bounded: peers are principals and cluster names). */
export class LabelCache {
  private readonly cache = new Map<string, PeerEntry>();
  private selfPrincipal: string = UNKNOWN;
  private me: SelfIdentity = UNKNOWN_SELF;

  get self(): SelfIdentity { return this.me; }
  /** The proxy's SPIFFE ID, when it has one. */
  get principal(): string | undefined { return this.selfPrincipal === UNKNOWN ? undefined : this.selfPrincipal; }

  setSelf(self: SelfIdentity): void {
    this.me = self;
    this.cache.clear();
  }

  /** The proxy's own SPIFFE ID (it can change when the SVID first arrives). */
  setSelfPrincipal(p: string | undefined): void {
    const v = p ?? UNKNOWN;
    if (v === this.selfPrincipal) return;
    this.selfPrincipal = v;
    this.cache.clear();
  }

  prefix(p: TrafficPeer): string {
    return this.entry(p).prefix;
  }

  /** The cached entry of a peer: its prefix and its series, so a request looks up a short key only. */
  entry(p: TrafficPeer): PeerEntry {
    const k = p.inbound ? `i${p.tls ? 1 : 0}${p.peerPrincipal ?? ''}\u0000${p.localPrincipal ?? ''}` : `o${p.cluster ?? ''}\u0000${p.peerPrincipal ?? ''}`;
    const hit = this.cache.get(k);
    if (hit !== undefined) return hit;
    const s = this.me;
    let v: string;
    if (p.inbound) {
      v = join({
        reporter: 'destination',
        source_workload: UNKNOWN,
        source_namespace: namespaceOfPrincipal(p.peerPrincipal) ?? UNKNOWN,
        source_principal: p.peerPrincipal ?? UNKNOWN,
        destination_service: s.service,
        destination_workload: s.workload,
        destination_namespace: s.namespace,
        destination_principal: p.localPrincipal ?? this.selfPrincipal,
        connection_security_policy: p.tls && p.peerPrincipal !== undefined ? 'mutual_tls' : 'none',
      });
    } else {
      const dest = p.cluster === undefined ? undefined : serviceOfCluster(p.cluster);
      v = join({
        reporter: 'source',
        source_workload: s.workload,
        source_namespace: s.namespace,
        source_principal: this.selfPrincipal,
        // A cluster that is not a Service's (static bootstrap clusters) is named as is: still bounded.
        destination_service: dest?.service ?? p.cluster ?? UNKNOWN,
        destination_workload: UNKNOWN,
        destination_namespace: dest?.namespace ?? namespaceOfPrincipal(p.peerPrincipal) ?? UNKNOWN,
        destination_principal: p.peerPrincipal ?? UNKNOWN,
        // Istio's source reporter does not know how the server side saw the connection either.
        connection_security_policy: p.peerPrincipal !== undefined ? 'mutual_tls' : UNKNOWN,
      });
    }
    if (this.cache.size >= MAX_CACHED) this.cache.clear();
    const e: PeerEntry = { prefix: v, http: new Map() };
    this.cache.set(k, e);
    return e;
  }
}

/** The full label string of one request. */
export function requestKey(prefix: string, status: number, flag: ResponseFlag | undefined, grpcStatus: string | undefined): string {
  return `${prefix},response_code="${status}",response_flags="${flag ?? '-'}",grpc_response_status="${grpcStatus ?? ''}"`;
}
