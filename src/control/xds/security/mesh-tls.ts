import type { Resource } from '../../../api/types.js';
import type { ServiceSpec } from '../../../api/service/service.js';
import type { WorkloadSpec } from '../../../api/workload/workload.js';
import { SDS_CERT, SDS_ROOT, tlsSni, type ServiceRef } from '../names.js';
import { refOf, type MeshInput } from '../model.js';
import { meshSettings, mtlsModeFor } from './inputs.js';
import { ALPN_HTTP, DOWNSTREAM_TLS_TYPE, TLS_TRANSPORT_SOCKET, UPSTREAM_TLS_TYPE, upstreamTlsSocket } from './tls.js';
import { spiffeUri } from '../names.js';

/**
 * Auto-mTLS (as Istio's): a client uses mTLS towards an endpoint only when
 * that endpoint can answer it, and the destination's effective mode is not
 * DISABLE.
 *
 * Which endpoints can, is written on their Workload:
 * - `weft.dev/inbound-port: "<port>"`: a Weft sidecar serves the workload; its
 *   inbound listener (inbound.ts) is bound on that port. The registry sets it
 *   from the proxy's node metadata WEFT_INBOUND_PORT; EDS then points at
 *   `address:<inbound port>` instead of the application's port.
 * - `weft.dev/mtls: "true"`: the workload itself speaks mTLS with a mesh
 *   certificate at its own ports (proxyless gRPC with certificate providers:
 *   node metadata WEFT_GRPC_MTLS).
 * Any other endpoint (a Workload applied by hand for an instance without a
 * sidecar) keeps its application port and plaintext.
 *
 * A cluster whose endpoints are all capable gets `transport_socket`; one with
 * both kinds gets Envoy's `transport_socket_matches`: capable endpoints carry
 * the metadata `envoy.transport_socket_match: {tlsMode: weft}` (endpoints.ts)
 * and the match of that name holds the TLS socket, the others fall back to
 * the cluster's default (plaintext). Istio does the same with `tlsMode: istio`.
 * Proxyless gRPC reads only `transport_socket` (grpc-js-xds 1.14,
 * xds-resource-type/cluster-resource-type.js validateTransportSocket), so its
 * clusters get TLS only when every endpoint is capable.
 */

type Obj = Record<string, unknown>;

export const INBOUND_PORT_ANNOTATION = 'weft.dev/inbound-port';
export const MTLS_ANNOTATION = 'weft.dev/mtls';
export const TRANSPORT_SOCKET_MATCH = 'envoy.transport_socket_match';
export const TLS_MODE_KEY = 'tlsMode';
export const TLS_MODE_WEFT = 'weft';
export const TLS_MATCH_NAME = `${TLS_MODE_KEY}-${TLS_MODE_WEFT}`;
/** The certificate provider instance `weft bootstrap grpc --cert-dir` writes (grpc-bootstrap.ts). */
export const GRPC_CERT_PROVIDER = 'weft';

/** The sidecar inbound port written on a Workload, if any. */
export function inboundPortOf(w: Resource<WorkloadSpec>): number | undefined {
  const v = w.metadata.annotations?.[INBOUND_PORT_ANNOTATION];
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isInteger(n) && n > 0 && n < 65536 ? n : undefined;
}

/** Whether a workload answers mTLS (a sidecar, or proxyless gRPC with mesh certificates). */
export function tlsCapable(w: Resource<WorkloadSpec>): boolean {
  return inboundPortOf(w) !== undefined || w.metadata.annotations?.[MTLS_ANNOTATION] === 'true';
}

/** Endpoint metadata of a capable endpoint (the key transport_socket_matches read). */
export const TLS_ENDPOINT_METADATA: Readonly<Obj> = Object.freeze({ filter_metadata: { [TRANSPORT_SOCKET_MATCH]: { [TLS_MODE_KEY]: TLS_MODE_WEFT } } });

/** What clusters towards a Service need to know of its endpoints. */
export interface ServiceTls {
  /** Capable members: none, every one, or some. No member at all counts as none. */
  peers: 'none' | 'all' | 'mixed';
  /** SPIFFE IDs its workloads present: spec.serviceAccounts, else its members'. */
  spiffeIds: string[];
}

/** ServiceTls of a Service, given its members (WorkloadIndex.membersOf). */
export function serviceTlsOf(input: MeshInput, svc: Resource<ServiceSpec>, members: readonly Resource<WorkloadSpec>[]): ServiceTls {
  let capable = 0;
  for (const w of members) if (tlsCapable(w)) capable++;
  const peers = capable === 0 ? 'none' : capable === members.length ? 'all' : 'mixed';
  const listed = svc.spec.serviceAccounts ?? [];
  const sas = listed.length > 0 ? listed : members.map((w) => w.spec.serviceAccount ?? 'default');
  const td = meshSettings(input).trustDomain;
  const ns = svc.metadata.namespace ?? 'default';
  return { peers, spiffeIds: [...new Set(sas)].sort().map((sa) => spiffeUri(td, ns, sa)) };
}

/** One string per ServiceTls: clusters change exactly when it does (snapshot-cache.ts). */
export function serviceTlsKey(t: ServiceTls): string {
  return `${t.peers}|${t.spiffeIds.join(',')}`;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * gRPC's client TLS (A29): certificates from the bootstrap's certificate
 * provider, the server's SPIFFE ID checked with `match_subject_alt_names`
 * (gRPC's `exact` matcher compares DNS names only, load-balancer-cds.js
 * SanMatcher, so an anchored regex states the URI exactly).
 */
export function grpcUpstreamTlsSocket(sans: readonly string[]): Obj {
  const validation: Obj = { ca_certificate_provider_instance: { instance_name: GRPC_CERT_PROVIDER, certificate_name: SDS_ROOT } };
  if (sans.length > 0) validation.match_subject_alt_names = sans.map((id) => ({ safe_regex: { regex: `^${escapeRegex(id)}$` } }));
  return {
    name: TLS_TRANSPORT_SOCKET,
    typed_config: {
      '@type': UPSTREAM_TLS_TYPE,
      common_tls_context: { tls_certificate_provider_instance: { instance_name: GRPC_CERT_PROVIDER, certificate_name: SDS_CERT }, validation_context: validation },
    },
  };
}

/** gRPC's server TLS (A29): the server's certificate and the CA from the provider, client certificates required. */
export function grpcDownstreamTlsSocket(): Obj {
  return {
    name: TLS_TRANSPORT_SOCKET,
    typed_config: {
      '@type': DOWNSTREAM_TLS_TYPE,
      common_tls_context: {
        tls_certificate_provider_instance: { instance_name: GRPC_CERT_PROVIDER, certificate_name: SDS_CERT },
        validation_context: { ca_certificate_provider_instance: { instance_name: GRPC_CERT_PROVIDER, certificate_name: SDS_ROOT } },
      },
      require_client_certificate: { value: true },
    },
  };
}

/**
 * Sets mTLS on one outbound cluster (Service `svc`, port `port`) as the
 * class comment says. `flavour` `grpc`: proxyless gRPC's shape, and only when
 * every endpoint is capable.
 */
export function applyMeshTls(cluster: Obj, input: MeshInput, svc: Resource<ServiceSpec>, port: number, tls: ServiceTls, flavour: 'envoy' | 'grpc'): void {
  if (tls.peers === 'none') return;
  const ref: ServiceRef = refOf(svc);
  if (mtlsModeFor(input, ref).mode === 'DISABLE') return;
  if (flavour === 'grpc') {
    if (tls.peers === 'all') cluster.transport_socket = grpcUpstreamTlsSocket(tls.spiffeIds);
    return;
  }
  const protocol = svc.spec.ports.find((p) => p.port === port)?.protocol ?? 'http';
  const socket = upstreamTlsSocket(tlsSni(ref, port), tls.spiffeIds, protocol === 'tcp' ? undefined : ALPN_HTTP);
  if (tls.peers === 'all') cluster.transport_socket = socket;
  else cluster.transport_socket_matches = [{ name: TLS_MATCH_NAME, match: { [TLS_MODE_KEY]: TLS_MODE_WEFT }, transport_socket: socket }];
}
