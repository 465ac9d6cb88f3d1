import * as protoLoader from '@grpc/proto-loader';
import * as grpc from '@grpc/grpc-js';
import { PROTO_INCLUDE_DIRS, PROXY_PROTO_FILES } from './proxy-proto-parse.js';

/**
 * Envoy's v3 API protos, as shipped inside @grpc/grpc-js-xds (no copy of our own,
 * so the control plane, the proxy and proxyless gRPC apps agree on one version).
 * Loaded once per process; loading takes a few hundred milliseconds. This is the
 * control plane's loader (descriptors for its services and proto checks); the proxy
 * decodes with the lighter proxy-protos.ts.
 */
export { PROTO_INCLUDE_DIRS };

/**
 * Every message type that can appear inside an Any we send or receive: what a proxy
 * decodes (proxy-proto-parse.ts), plus what only the control plane serves: the ADS and
 * SDS services (ads.proto imports discovery.proto) and the admin config dump.
 */
const PROTO_FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/secret/v3/sds.proto',
  'envoy/admin/v3/config_dump.proto',
  ...PROXY_PROTO_FILES.filter((f) => f !== 'envoy/service/discovery/v3/discovery.proto'),
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
