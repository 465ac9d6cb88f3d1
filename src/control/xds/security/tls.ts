import { TYPE_PREFIX } from '../../../xds/type-urls.js';
import { SDS_CERT, SDS_ROOT, tlsSni, type ServiceRef } from '../names.js';
import type { MeshInput } from '../model.js';
import { findService, mtlsModeFor, spiffeIdsOf } from './inputs.js';

/**
 * mTLS between Weft proxies (DESIGN.md "Identity"): certificates come over SDS
 * on the ADS stream, Istio's secret names: `default` (the workload's SVID and
 * key) and `ROOTCA` (the trust bundle). Proxyless gRPC gets none of this (it has
 * no SDS: XDS-NOTES), so only the `envoy` flavour of clusters carries it.
 */

type Obj = Record<string, unknown>;
export const TLS_TRANSPORT_SOCKET = 'envoy.transport_sockets.tls';
export const DOWNSTREAM_TLS_TYPE = `${TYPE_PREFIX}envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext`;
export const UPSTREAM_TLS_TYPE = `${TYPE_PREFIX}envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext`;
export const ALPN_HTTP = ['h2', 'http/1.1'];

const SDS_SOURCE = { ads: {}, resource_api_version: 'V3' };

function certificate(): Obj[] {
  return [{ name: SDS_CERT, sds_config: SDS_SOURCE }];
}

/** Server side of the inbound listener: client certificate required, checked against ROOTCA. */
export function downstreamTlsSocket(alpn: readonly string[] | undefined): Obj {
  const common: Obj = {
    tls_certificate_sds_secret_configs: certificate(),
    validation_context_sds_secret_config: { name: SDS_ROOT, sds_config: SDS_SOURCE },
  };
  if (alpn !== undefined) common.alpn_protocols = [...alpn];
  return { name: TLS_TRANSPORT_SOCKET, typed_config: { '@type': DOWNSTREAM_TLS_TYPE, common_tls_context: common, require_client_certificate: { value: true } } };
}

/**
 * Client side: our SVID, the server checked against ROOTCA and, when the
 * destination's identities are known, against them (URI SAN, exact). With no
 * known service account any workload of the mesh is accepted (as Istio does).
 */
export function upstreamTlsSocket(sni: string, sans: readonly string[], alpn: readonly string[] | undefined): Obj {
  const common: Obj = { tls_certificate_sds_secret_configs: certificate() };
  const sds = { name: SDS_ROOT, sds_config: SDS_SOURCE };
  if (sans.length > 0) {
    common.combined_validation_context = {
      default_validation_context: { match_typed_subject_alt_names: sans.map((id) => ({ san_type: 'URI', matcher: { exact: id } })) },
      validation_context_sds_secret_config: sds,
    };
  } else {
    common.validation_context_sds_secret_config = sds;
  }
  if (alpn !== undefined) common.alpn_protocols = [...alpn];
  return { name: TLS_TRANSPORT_SOCKET, typed_config: { '@type': UPSTREAM_TLS_TYPE, common_tls_context: common, sni } };
}

/**
 * HOOK for clusters.ts (Weft proxy clusters only, not `grpc`): sets the
 * cluster's transport_socket to mTLS towards a Service port unless the
 * destination's mode is DISABLE. SNI `outbound_.<port>_._.<fqdn>` picks the
 * port's chain on the peer's inbound listener (names.ts).
 *
 * Only correct once EDS points at the peers' inbound listeners (15006), not at
 * the applications directly as endpoints.ts does today.
 */
export function applyUpstreamTls(cluster: Obj, input: MeshInput, svc: ServiceRef, port: number): void {
  const service = findService(input, svc);
  if (service === undefined) return;
  if (mtlsModeFor(input, svc).mode === 'DISABLE') return;
  const protocol = service.spec.ports.find((p) => p.port === port)?.protocol ?? 'http';
  cluster.transport_socket = upstreamTlsSocket(tlsSni(svc, port), spiffeIdsOf(input, service), protocol === 'tcp' ? undefined : ALPN_HTTP);
}
