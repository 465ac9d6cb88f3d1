/**
 * From one access-log entry to the telemetry key it counts under: direction, source
 * and destination Service, route, mTLS, success. Kept apart from the recorder so the
 * mapping can follow the access-log entry as it grows (identity fields) in one place.
 */
import type { AccessLogEntry } from '../http/forward.js';
import type { Direction, PeerWire } from '../../telemetry/telemetry-proto.js';

export interface Peer { readonly name: string; readonly namespace: string }

/**
 * Fields a richer access-log entry may carry (identity of the peer, gRPC status, trace).
 * Read when present; the entry type is not required to have them.
 */
interface OptionalFields {
  /** Served by an inbound listener (else derived from the cluster name). */
  readonly inbound?: boolean;
  readonly grpcStatus?: number | string;
  /** Verified SPIFFE IDs: inbound, the client's; outbound, the upstream's (either means mTLS). */
  readonly sourcePrincipal?: string;
  readonly destinationPrincipal?: string;
  readonly sourceService?: string;
  readonly sourceNamespace?: string;
  readonly connectionSecurityPolicy?: string;
  readonly mtls?: boolean;
  readonly traceId?: string;
}

export interface Classified {
  readonly direction: Direction;
  readonly source: Peer;
  readonly destination: Peer;
  readonly route: string;
  readonly mtls: boolean;
  readonly success: boolean;
  readonly traceId: string | undefined;
}

export const UNKNOWN: Peer = Object.freeze({ name: 'unknown', namespace: '' });

/** `outbound|80||catalog.default.svc.cluster.local` → catalog/default. */
export function serviceOfCluster(cluster: string): Peer | undefined {
  const parts = cluster.split('|');
  if (parts.length !== 4 || parts[0] !== 'outbound') return undefined;
  const labels = parts[3]!.split('.');
  if (labels.length < 2 || labels[0] === '' || labels[1] === '') return undefined;
  return { name: labels[0]!, namespace: labels[1]! };
}

/** Cluster names are few and long-lived: parse each once (bounded; cleared when full). */
const clusterCache = new Map<string, Peer | null>();
function clusterService(cluster: string): Peer | undefined {
  let v = clusterCache.get(cluster);
  if (v === undefined) {
    if (clusterCache.size >= 4096) clusterCache.clear();
    v = serviceOfCluster(cluster) ?? null;
    clusterCache.set(cluster, v);
  }
  return v ?? undefined;
}

/** `catalog.default[:80]` (or `.svc[.cluster.local]`) → catalog/default. */
export function serviceOfAuthority(authority: string): Peer | undefined {
  const host = authority.replace(/:\d+$/, '');
  const labels = host.split('.');
  if (labels.length === 2 || (labels.length >= 3 && labels[2] === 'svc')) {
    if (labels[0] !== '' && labels[1] !== '') return { name: labels[0]!, namespace: labels[1]! };
  }
  return undefined;
}

/**
 * `spiffe://td/ns/NS/sa/SA` → unknown/NS: a service account is not a Service (many
 * Services run as `default`), so only the namespace is known, as in Istio's labels.
 */
function peerOfPrincipal(p: string | undefined): Peer | undefined {
  const m = p === undefined ? null : /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/[^/]+$/.exec(p);
  return m === null ? undefined : { name: 'unknown', namespace: m[1]! };
}

function successOf(status: number, grpcStatus: number | string | undefined): boolean {
  if (status <= 0 || status >= 500) return false;
  if (grpcStatus === undefined || grpcStatus === '') return true;
  return Number(grpcStatus) === 0;
}

export function classify(e: AccessLogEntry, own: Peer): Classified {
  const x = e as AccessLogEntry & OptionalFields;
  const inbound = x.inbound ?? e.cluster?.startsWith('inbound|') ?? false;
  const peerPrincipal = inbound ? x.sourcePrincipal : x.destinationPrincipal;
  const mtls = x.mtls ?? (x.connectionSecurityPolicy !== undefined ? x.connectionSecurityPolicy === 'mutual_tls' : peerPrincipal !== undefined && peerPrincipal !== '');
  const success = successOf(e.status, x.grpcStatus);
  if (inbound) {
    const source = x.sourceService !== undefined && x.sourceService !== ''
      ? { name: x.sourceService, namespace: x.sourceNamespace ?? '' }
      : (peerOfPrincipal(x.sourcePrincipal) ?? UNKNOWN);
    return { direction: 'inbound', source, destination: own, route: e.routeName ?? '', mtls, success, traceId: x.traceId };
  }
  const destination = (e.cluster === undefined ? undefined : clusterService(e.cluster)) ?? serviceOfAuthority(e.authority) ?? { name: e.authority === '' ? 'unknown' : e.authority, namespace: '' };
  return { direction: 'outbound', source: own, destination, route: e.routeName ?? '', mtls, success, traceId: x.traceId };
}

export function peerWire(p: Peer): PeerWire {
  return { name: p.name, namespace: p.namespace };
}
