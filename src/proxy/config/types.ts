/**
 * The proxy's internal, compiled form of Envoy xDS v3 resources. Everything here is
 * built once when a resource arrives (validated, regexes compiled, defaults applied)
 * and then only read on the hot path. Objects are frozen by the compilers, so a
 * snapshot that a request captured cannot change under it.
 */

import type { ChainEntry } from '../filters/types.js';
import type { AccessLogConfig } from '../observability/access-log.js';
import type { TracingConfig } from '../observability/tracing.js';

/** A JSON object as proto-loader produces it (keepCase, json: true). */
export type ProtoJson = Record<string, unknown>;

export interface StringMatch {
  readonly kind: 'exact' | 'prefix' | 'suffix' | 'contains' | 'regex';
  readonly value: string;
  readonly ignoreCase: boolean;
  readonly regex?: RegExp;
}

export interface HeaderMatch {
  /** Lower-case header name. */
  readonly name: string;
  readonly invert: boolean;
  readonly treatMissingAsEmpty: boolean;
  /** `present` with `presentMatch` = wanted presence; otherwise a string match on the value. */
  readonly present?: boolean;
  readonly string?: StringMatch;
  readonly range?: { readonly start: number; readonly end: number };
}

export interface QueryParamMatch {
  readonly name: string;
  readonly present?: boolean;
  readonly string?: StringMatch;
}

export type PathMatch =
  | { readonly kind: 'prefix'; readonly value: string; readonly caseSensitive: boolean }
  | { readonly kind: 'path'; readonly value: string; readonly caseSensitive: boolean }
  | { readonly kind: 'regex'; readonly regex: RegExp }
  | { readonly kind: 'separated-prefix'; readonly value: string; readonly caseSensitive: boolean };

export type AppendAction = 'APPEND_IF_EXISTS_OR_ADD' | 'ADD_IF_ABSENT' | 'OVERWRITE_IF_EXISTS_OR_ADD' | 'OVERWRITE_IF_EXISTS';

export interface HeaderToAdd {
  /** Lower-case name. */
  readonly name: string;
  readonly value: string;
  readonly action: AppendAction;
  readonly keepEmptyValue: boolean;
}

export interface HeaderMutation {
  readonly add: readonly HeaderToAdd[];
  /** Lower-case names. */
  readonly remove: readonly string[];
}

export type HashPolicy =
  | { readonly kind: 'header'; readonly name: string; readonly terminal: boolean }
  /** ttlMs set: a missing cookie is generated and set on the response (router/hash-cookie.ts). */
  | { readonly kind: 'cookie'; readonly name: string; readonly terminal: boolean; readonly ttlMs?: number | undefined; readonly path?: string | undefined }
  | { readonly kind: 'source-ip'; readonly terminal: boolean }
  | { readonly kind: 'query'; readonly name: string; readonly terminal: boolean };

export interface WeightedCluster {
  readonly name: string;
  readonly weight: number;
  readonly requestHeaders: HeaderMutation;
  readonly responseHeaders: HeaderMutation;
}

export interface RegexRewrite {
  readonly regex: RegExp;
  readonly substitution: string;
}

export interface ForwardAction {
  readonly kind: 'forward';
  /** Exactly one of cluster / weighted is set. */
  readonly cluster?: string;
  readonly weighted?: { readonly clusters: readonly WeightedCluster[]; readonly total: number };
  readonly prefixRewrite?: string;
  readonly regexRewrite?: RegexRewrite;
  readonly hostRewrite?: string;
  /** Whole-request timeout in ms; 0 disables it. Envoy's default is 15 s. */
  readonly timeoutMs: number;
  /** route idle_timeout: the stream is ended (408, flag SI) after this long without bytes either way; 0 / undefined: none. */
  readonly idleTimeoutMs?: number | undefined;
  /** max_stream_duration.max_stream_duration: 408 (flag DT) once the stream has lasted this long; 0 / undefined: none. */
  readonly maxStreamDurationMs?: number | undefined;
  /** max_stream_duration.grpc_timeout_header_max: set, a gRPC request's grpc-timeout (capped by it unless 0) is the stream's max duration. */
  readonly grpcTimeoutHeaderMaxMs?: number | undefined;
  readonly hashPolicies: readonly HashPolicy[];
  /** Status when the named cluster does not exist (Envoy: 503 by default). */
  readonly clusterNotFoundStatus: number;
  /** route.retry_policy (else the virtual host's); undefined: no retries. */
  readonly retry?: RetryPolicy | undefined;
  /** Request bodies up to this many bytes are buffered so an attempt can be replayed. */
  readonly bufferLimitBytes: number;
  /** request_mirror_policies (empty: none). */
  readonly mirrors: readonly MirrorPolicy[];
}

export interface MirrorPolicy {
  readonly cluster: string;
  /** runtime_fraction default_value as a probability (1 when absent). */
  readonly fraction: number;
  /** Envoy appends -shadow to the host unless disable_shadow_host_suffix_append. */
  readonly shadowSuffix: boolean;
}

/** Envoy retry_on conditions Weft honours (x-envoy-retry-on / x-envoy-retry-grpc-on names). */
export type RetryOn =
  | '5xx' | 'gateway-error' | 'reset' | 'reset-before-request' | 'connect-failure' | 'refused-stream'
  | 'retriable-4xx' | 'retriable-status-codes' | 'envoy-ratelimited'
  | 'cancelled' | 'deadline-exceeded' | 'internal' | 'resource-exhausted' | 'unavailable';

export interface RetryPolicy {
  readonly on: ReadonlySet<RetryOn>;
  /** Retries after the first attempt (num_retries, Envoy's default 1). */
  readonly numRetries: number;
  /** 0: no per-try timeout (the route timeout bounds all attempts). */
  readonly perTryTimeoutMs: number;
  /** retry_back_off (Envoy: base 25 ms, max 10 × base); full jitter. */
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly retriableStatusCodes: ReadonlySet<number>;
  /** All must match the request (`:method` included) for it to be retried at all. */
  readonly retriableRequestHeaders: readonly HeaderMatch[];
  /** Picks tried to find a host not tried before (previous_hosts; Weft always prefers another host). */
  readonly hostSelectionMaxAttempts: number;
}

export interface RedirectAction {
  readonly kind: 'redirect';
  readonly scheme?: string;
  readonly host?: string;
  readonly port?: number;
  readonly path?: string;
  readonly prefixRewrite?: string;
  readonly regexRewrite?: RegexRewrite;
  readonly status: number;
  readonly stripQuery: boolean;
}

export interface DirectResponseAction {
  readonly kind: 'direct';
  readonly status: number;
  readonly body?: Buffer;
}

export type RouteAction = ForwardAction | RedirectAction | DirectResponseAction;

export interface CompiledRoute {
  readonly name: string;
  /** typed_per_filter_config compiled by each filter's factory, keyed by filter name (empty map when none). */
  readonly perFilter: ReadonlyMap<string, unknown>;
  readonly path: PathMatch;
  readonly headers: readonly HeaderMatch[];
  readonly query: readonly QueryParamMatch[];
  readonly action: RouteAction;
  readonly requestHeaders: HeaderMutation;
  readonly responseHeaders: HeaderMutation;
}

export interface CompiledVirtualHost {
  readonly name: string;
  readonly domains: readonly string[];
  readonly routes: readonly CompiledRoute[];
  readonly requestHeaders: HeaderMutation;
  readonly responseHeaders: HeaderMutation;
}

export interface CompiledRouteConfig {
  readonly name: string;
  /** Exact (lower-case) domain → virtual host. */
  readonly exact: ReadonlyMap<string, CompiledVirtualHost>;
  /** `*.foo` entries as [suffix incl. dot-less rest, vhost], longest first. */
  readonly suffixes: readonly (readonly [string, CompiledVirtualHost])[];
  /** `foo.*` entries as [prefix, vhost], longest first. */
  readonly prefixes: readonly (readonly [string, CompiledVirtualHost])[];
  readonly catchAll?: CompiledVirtualHost;
  readonly requestHeaders: HeaderMutation;
  readonly responseHeaders: HeaderMutation;
  readonly mostSpecificHeaderMutationsWins: boolean;
  readonly virtualHosts: readonly CompiledVirtualHost[];
}

export interface HttpConnectionManagerConfig {
  readonly statPrefix: string;
  /** AUTO and HTTP2 sniff the HTTP/2 preface (h2c prior knowledge) on each connection; HTTP1 does not. */
  readonly codec: 'AUTO' | 'HTTP1' | 'HTTP2';
  /** Inline route config, or the RDS name to look up in the snapshot. */
  readonly routeConfig?: CompiledRouteConfig;
  readonly rdsName?: string;
  readonly stripAnyHostPort: boolean;
  readonly stripMatchingHostPort: boolean;
  /** Downstream request timeout in ms (0 = none). */
  readonly requestTimeoutMs: number;
  readonly requestHeadersTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** stream_idle_timeout in ms (Envoy's default 5 min; 0 = none); a route's idle_timeout replaces it. Unset: none. */
  readonly streamIdleTimeoutMs?: number;
  /** max_request_headers_kb, in bytes (Envoy's default 60 KiB). */
  readonly maxRequestHeadersBytes: number;
  /** common_http_protocol_options.max_headers_count (Envoy's default 100). */
  readonly maxHeadersCount: number;
  /** HTTP Upgrade types (lower-case) passed through, from upgrade_configs. */
  readonly upgradeTypes: ReadonlySet<string>;
  /** HTTP filters before the router, in order (filters/registry.ts); empty: the router alone. */
  readonly httpFilters: readonly ChainEntry[];
  /** `access_log` (observability/access-log.ts); empty: none. */
  readonly accessLogs?: readonly AccessLogConfig[];
  /** `tracing` with the OpenTelemetry provider (observability/tracing.ts). */
  readonly tracing?: TracingConfig | undefined;
}

export interface TcpProxyConfig {
  readonly statPrefix: string;
  /** Exactly one of cluster / weighted is set. */
  readonly cluster?: string;
  readonly weighted?: { readonly clusters: readonly { readonly name: string; readonly weight: number }[]; readonly total: number };
  /** Closes the connection after this long without bytes either way; 0 disables. Envoy's default 1 h. */
  readonly idleTimeoutMs: number;
}

export interface CompiledListener {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** The first chain's HCM / TCP proxy (every chain's are in `chains`); at most one of hcm / tcp is set. */
  readonly hcm?: HttpConnectionManagerConfig;
  readonly tcp?: TcpProxyConfig;
  /** envoy.filters.network.connection_limit max_connections of the first chain (undefined: no limit). */
  readonly maxConnections?: number;
  /** filter_chains in order, then default_filter_chain (src/proxy/listeners/filter-chain-match.ts picks one per connection). */
  readonly chains?: readonly CompiledFilterChain[];
  /** True when a chain matches on transport, SNI or ALPN: the first bytes are peeked (tls_inspector / http_inspector). */
  readonly inspect?: boolean;
  /** traffic_direction (INBOUND, OUTBOUND or UNSPECIFIED). */
  readonly direction?: string;
}

/** filter_chain_match, the criteria Weft honours (Envoy's order: port, SNI, transport, ALPN). */
export interface FilterChainMatch {
  readonly destinationPort?: number | undefined;
  /** Lower case; `*.example.com` wildcards allowed. */
  readonly serverNames: readonly string[];
  readonly transportProtocol?: 'tls' | 'raw_buffer' | undefined;
  readonly applicationProtocols: readonly string[];
}

export interface CompiledFilterChain {
  readonly name: string;
  readonly match: FilterChainMatch;
  /** True for the listener's default_filter_chain (used when no chain matches). */
  readonly isDefault: boolean;
  readonly tls?: DownstreamTlsConfig | undefined;
  /** Exactly one of hcm / tcp is set. */
  readonly hcm?: HttpConnectionManagerConfig | undefined;
  readonly tcp?: TcpProxyConfig | undefined;
  readonly maxConnections?: number | undefined;
}

/** Where a certificate + key come from: PEM given in the config, or an SDS secret (`default` = this proxy's SVID). */
export type TlsCertificateSource =
  | { readonly kind: 'inline'; readonly certPem: string; readonly keyPem: string }
  | { readonly kind: 'sds'; readonly name: string };

/** Where trusted CAs come from: PEM given in the config, or an SDS secret (`ROOTCA` = the mesh trust bundle). */
export type TlsValidationSource =
  | { readonly kind: 'inline'; readonly caPem: string }
  | { readonly kind: 'sds'; readonly name: string };

/** match_typed_subject_alt_names entry of type URI (the SPIFFE ID). */
export interface SanMatcher {
  readonly kind: 'exact' | 'prefix';
  readonly value: string;
}

/** DownstreamTlsContext (envoy.transport_sockets.tls on a filter chain). */
export interface DownstreamTlsConfig {
  readonly certificate: TlsCertificateSource;
  readonly validation?: TlsValidationSource | undefined;
  readonly requireClientCertificate: boolean;
  /** Offered ALPN, in preference order (empty: none). */
  readonly alpn: readonly string[];
  /** A client certificate's URI SAN must match one (empty: any verified certificate). */
  readonly sanMatchers: readonly SanMatcher[];
}

/** UpstreamTlsContext (envoy.transport_sockets.tls on a cluster). */
export interface UpstreamTlsConfig {
  readonly certificate?: TlsCertificateSource | undefined;
  readonly validation?: TlsValidationSource | undefined;
  readonly sni?: string | undefined;
  readonly alpn: readonly string[];
  /** The server certificate's URI SAN must match one (empty: any certificate the CAs verify). */
  readonly sanMatchers: readonly SanMatcher[];
}

export type LbPolicy = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'RING_HASH' | 'MAGLEV';

export interface ClusterConfig {
  readonly name: string;
  readonly kind: 'STATIC' | 'EDS';
  /** EDS resource name (service_name, else the cluster name). */
  readonly edsName: string;
  readonly lbPolicy: LbPolicy;
  readonly connectTimeoutMs: number;
  readonly ringHash: { readonly minRingSize: number; readonly maxRingSize: number };
  readonly maglevTableSize: number;
  readonly leastRequestChoices: number;
  /** Circuit breaker thresholds (default priority). */
  readonly maxConnections: number;
  readonly maxRequests: number;
  readonly maxPendingRequests: number;
  /** Concurrent retries (ignored when retryBudget is set, as in Envoy). */
  readonly maxRetries: number;
  readonly retryBudget?: { readonly budgetPercent: number; readonly minRetryConcurrency: number } | undefined;
  readonly outlier?: OutlierConfig | undefined;
  readonly healthChecks: readonly HealthCheckConfig[];
  /** common_lb_config.healthy_panic_threshold, percent (Envoy's default 50). */
  readonly panicThresholdPercent: number;
  /** common_lb_config.locality_weighted_lb_config set: a locality first (by its EDS weight), then a host in it. */
  readonly localityWeighted: boolean;
  /** Upstream HTTP protocol (HttpProtocolOptions explicit_http_config, or the deprecated http2_protocol_options). */
  readonly protocol: 'http1' | 'http2';
  /** Load assignment given inline (STATIC clusters). */
  readonly loadAssignment?: EndpointAssignment;
  /** transport_socket envoy.transport_sockets.tls: connect with TLS (src/proxy/tls/upstream-tls.ts). */
  readonly tls?: UpstreamTlsConfig | undefined;
}

export type HealthStatus = 'UNKNOWN' | 'HEALTHY' | 'UNHEALTHY' | 'DRAINING' | 'TIMEOUT' | 'DEGRADED';

export interface EndpointSpec {
  readonly address: string;
  readonly port: number;
  readonly health: HealthStatus;
  /** The endpoint's own weight, or 0 when its locality's weight is 0 (see compile-endpoints). */
  readonly weight: number;
  readonly priority: number;
  readonly locality: string;
  /** The locality's load_balancing_weight; undefined when EDS gave none (no traffic under locality weighting, as Envoy). */
  readonly localityWeight?: number | undefined;
}

export interface EndpointAssignment {
  readonly clusterName: string;
  readonly endpoints: readonly EndpointSpec[];
}

/** outlier_detection, Envoy's defaults applied; enforcing_* are percentages. */
export interface OutlierConfig {
  readonly consecutive5xx: number;
  readonly enforcingConsecutive5xx: number;
  readonly consecutiveGatewayFailure: number;
  readonly enforcingConsecutiveGatewayFailure: number;
  readonly intervalMs: number;
  readonly baseEjectionTimeMs: number;
  readonly maxEjectionTimeMs: number;
  readonly maxEjectionPercent: number;
  readonly enforcingSuccessRate: number;
  readonly successRateMinimumHosts: number;
  readonly successRateRequestVolume: number;
  /** In thousandths (1900 = 1.9), as Envoy reads it. */
  readonly successRateStdevFactor: number;
}

export type HealthCheckKind =
  | { readonly type: 'http'; readonly path: string; readonly host?: string | undefined; readonly expected: readonly (readonly [number, number])[] }
  | { readonly type: 'tcp' }
  | { readonly type: 'grpc'; readonly serviceName: string; readonly authority?: string | undefined };

export interface HealthCheckConfig {
  readonly kind: HealthCheckKind;
  readonly timeoutMs: number;
  readonly intervalMs: number;
  readonly unhealthyThreshold: number;
  readonly healthyThreshold: number;
}
