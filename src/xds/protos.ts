import * as protoLoader from '@grpc/proto-loader';
import * as grpc from '@grpc/grpc-js';
import { PROTO_INCLUDE_DIRS } from './proxy-proto-parse.js';

/**
 * Envoy's v3 API protos, as shipped inside @grpc/grpc-js-xds (no copy of our own,
 * so the control plane, the proxy and proxyless gRPC apps agree on one version).
 * Loaded once per process; loading takes a few hundred milliseconds. This is the
 * control plane's loader (descriptors for its services and proto checks); the proxy
 * decodes with the lighter proxy-protos.ts.
 */
export { PROTO_INCLUDE_DIRS };

/** Every message type that can appear inside an Any we send or receive. */
const PROTO_FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/secret/v3/sds.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/jwt_authn/v3/config.proto',
  'envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/extensions/load_balancing_policies/ring_hash/v3/ring_hash.proto',
  'envoy/extensions/load_balancing_policies/round_robin/v3/round_robin.proto',
  'envoy/extensions/load_balancing_policies/least_request/v3/least_request.proto',
  'envoy/extensions/load_balancing_policies/maglev/v3/maglev.proto',
  'envoy/extensions/load_balancing_policies/random/v3/random.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/config/core/v3/health_check.proto',
  'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto',
  'envoy/admin/v3/config_dump.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto',
  // Telemetry (H4): access loggers and the OpenTelemetry tracer an HCM may carry.
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
  'envoy/config/trace/v3/opentelemetry.proto',
];

/**
 * `json: true` lets an Any be written as `{ '@type': url, ...fields }`;
 * `keepCase` keeps Envoy's snake_case field names, so what we build reads like
 * Envoy's docs and config dumps.
 */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
  json: true,
  includeDirs: PROTO_INCLUDE_DIRS,
};

let cached: protoLoader.PackageDefinition | undefined;

export function envoyPackageDefinition(): protoLoader.PackageDefinition {
  cached ??= protoLoader.loadSync(PROTO_FILES, LOADER_OPTIONS);
  return cached;
}

export interface AdsServiceDefinitions {
  ads: grpc.ServiceDefinition;
  sds: grpc.ServiceDefinition;
  /** Client constructor for the ADS service (tests and benchmarks; the proxy uses proxyAdsClientConstructor). */
  AdsClient: grpc.ServiceClientConstructor;
}

export function adsServices(): AdsServiceDefinitions {
  const root = grpc.loadPackageDefinition(envoyPackageDefinition()) as unknown as {
    envoy: { service: { discovery: { v3: { AggregatedDiscoveryService: grpc.ServiceClientConstructor } }; secret: { v3: { SecretDiscoveryService: grpc.ServiceClientConstructor } } } };
  };
  const Ads = root.envoy.service.discovery.v3.AggregatedDiscoveryService;
  const Sds = root.envoy.service.secret.v3.SecretDiscoveryService;
  return { ads: Ads.service, sds: Sds.service, AdsClient: Ads };
}
