// Compilation of xDS resources: defaults, parsing of proto JSON forms, and clear
// refusals (each becomes a NACK's error_detail) of what the proxy cannot honour.
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileCluster } from './compile-cluster.js';
import { compileLoadAssignment } from './compile-endpoints.js';
import { compileListener } from './compile-listener.js';
import { compileRouteConfig } from './compile-route.js';
import { ConfigError } from './proto-values.js';
import { stripOneofMarkers } from './state.js';
import { registerOneofNames } from './oneof-markers.js';
import { envoyPackageDefinition } from '../../xds/protos.js';

const refuses = (fn: () => unknown, re: RegExp): void => {
  assert.throws(fn, (e: unknown) => e instanceof ConfigError && re.test(e.message));
};

describe('clusters', () => {
  test('defaults: STATIC needs load_assignment; EDS uses service_name or the name', () => {
    refuses(() => compileCluster({ name: 'a' }), /load_assignment: a STATIC cluster needs load_assignment/);
    const c = compileCluster({ name: 'a', type: 'EDS', eds_cluster_config: { service_name: 'svc-a' } });
    assert.equal(c.edsName, 'svc-a');
    assert.equal(c.lbPolicy, 'ROUND_ROBIN');
    assert.equal(c.connectTimeoutMs, 5000);
    assert.equal(compileCluster({ name: 'b', type: 'EDS', connect_timeout: { seconds: '2', nanos: 500_000_000 } }).connectTimeoutMs, 2500);
    assert.equal(compileCluster({ name: 'b', type: 'EDS', connect_timeout: '0.25s' }).connectTimeoutMs, 250);
  });

  test('lb policies and their configs', () => {
    const c = compileCluster({ name: 'a', type: 'EDS', lb_policy: 'MAGLEV', maglev_lb_config: { table_size: { value: 251 } } });
    assert.equal(c.maglevTableSize, 251);
    refuses(() => compileCluster({ name: 'a', type: 'EDS', lb_policy: 'MAGLEV', maglev_lb_config: { table_size: 100 } }), /must be a prime/);
    refuses(() => compileCluster({ name: 'a', type: 'EDS', lb_policy: 'CLUSTER_PROVIDED' }), /CLUSTER_PROVIDED is not supported/);
    refuses(() => compileCluster({ name: 'a', type: 'STRICT_DNS' }), /a STRICT_DNS cluster needs load_assignment/);
    refuses(() => compileCluster({ name: 'a', type: 'ORIGINAL_DST' }), /ORIGINAL_DST clusters are not supported/);
    const dnsAssignment = (host: string): unknown => ({ cluster_name: 'jwks', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: host, port_value: 443 } } } }] }] });
    const jwks = compileCluster({ name: 'jwks|issuer.example:443', type: 'STRICT_DNS', load_assignment: dnsAssignment('issuer.example') });
    assert.equal(jwks.loadAssignment?.endpoints[0]?.address, 'issuer.example');
    refuses(() => compileCluster({ name: 'a', type: 'LOGICAL_DNS', load_assignment: dnsAssignment('bad_name!') }), /"bad_name!" is not an IP literal or a host name/);
    refuses(() => compileCluster({ name: 'a', type: 'STATIC', load_assignment: dnsAssignment('issuer.example') }), /"issuer.example" is not an IP literal$/);
    // Upstream TLS without trusted CAs would mean an unverified peer: refused (src/proxy/tls/compile-tls.ts).
    refuses(() => compileCluster({ name: 'a', type: 'EDS', transport_socket: { name: 'tls', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext' } } }), /needs a validation context/);
  });
});

describe('endpoints', () => {
  test('weights (plain or UInt32Value), health, localities and priorities', () => {
    const a = compileLoadAssignment({
      cluster_name: 'c',
      endpoints: [
        { locality: { zone: 'z1' }, load_balancing_weight: { value: 2 }, lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: 80 } } }, load_balancing_weight: 3, health_status: 'HEALTHY' }] },
        { priority: 1, lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.2', port_value: 80 } } } }] },
      ],
    });
    assert.equal(a.endpoints[0]!.weight, 3, "the locality weight gates hosts; it is not multiplied in");
    assert.equal(a.endpoints[0]!.health, 'HEALTHY');
    assert.equal(a.endpoints[0]!.locality, '/z1/');
    assert.equal(a.endpoints[1]!.priority, 1);
    assert.equal(a.endpoints[1]!.health, 'UNKNOWN');
    refuses(() => compileLoadAssignment({ cluster_name: 'c', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'example.com', port_value: 80 } } } }] }] }), /not an IP literal/);
  });
});

describe('resilience fields from the control plane (policy-proxy golden)', () => {
  const golden = JSON.parse(readFileSync(new URL('../../../../src/control/xds/testdata/policy-proxy.golden.json', import.meta.url), 'utf8')) as Record<string, Record<string, unknown>[]>;
  test('circuit breakers, retry budget, outlier detection and health checks compile', () => {
    const clusters = golden['type.googleapis.com/envoy.config.cluster.v3.Cluster']!.map((c) => compileCluster(c));
    const catalog = clusters.find((c) => c.name === 'outbound|80||catalog.default.svc.cluster.local')!;
    assert.equal(catalog.maxPendingRequests, 50);
    assert.equal(catalog.maxRequests, 500);
    assert.equal(catalog.maxRetries, 3);
    assert.deepEqual(catalog.retryBudget, { budgetPercent: 25, minRetryConcurrency: 5 });
    assert.equal(catalog.outlier!.consecutiveGatewayFailure, 3);
    assert.equal(catalog.outlier!.enforcingConsecutiveGatewayFailure, 100);
    assert.equal(catalog.outlier!.successRateStdevFactor, 1900);
    assert.equal(catalog.outlier!.maxEjectionPercent, 50);
    assert.deepEqual(catalog.healthChecks[0]!.kind, { type: 'http', path: '/healthz', host: undefined, expected: [[200, 201], [204, 205]] });
    assert.equal(catalog.panicThresholdPercent, 50);
    const kinds = clusters.flatMap((c) => c.healthChecks.map((h) => h.kind.type)).sort();
    assert.deepEqual([...new Set(kinds)], ['grpc', 'http', 'tcp']);
  });
  test('retry policies of the sidecar routes compile (POST/PATCH excluded by retriable_request_headers)', () => {
    const routes = golden['type.googleapis.com/envoy.config.route.v3.RouteConfiguration']!.filter((r) => r.name === 'outbound');
    const rc = compileRouteConfig(routes[0]);
    const retries = rc.virtualHosts.flatMap((vh) => vh.routes).map((r) => (r.action.kind === 'forward' ? r.action.retry : undefined)).filter((r) => r !== undefined);
    assert.ok(retries.length > 0);
    assert.ok(retries.some((r) => r.retriableRequestHeaders.length === 1 && r.retriableRequestHeaders[0]!.name === ':method' && r.retriableRequestHeaders[0]!.invert));
    const perFilter = rc.virtualHosts.flatMap((vh) => vh.routes).flatMap((r) => [...r.perFilter.keys()]);
    assert.ok(perFilter.includes('envoy.filters.http.fault') && perFilter.includes('envoy.filters.http.local_ratelimit'));
  });
  test('per-filter config on the virtual host and route config reaches routes; the route\'s own entry wins', () => {
    const fault = (ms: number): unknown => ({ '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault', delay: { fixed_delay: `${ms / 1000}s`, percentage: { numerator: 100 } } });
    const rc = compileRouteConfig({
      name: 'r',
      typed_per_filter_config: { 'envoy.filters.http.fault': fault(1000) },
      virtual_hosts: [
        { name: 'a', domains: ['a'], typed_per_filter_config: { 'envoy.filters.http.fault': fault(2000) }, routes: [
          { match: { prefix: '/own' }, route: { cluster: 'c' }, typed_per_filter_config: { 'envoy.filters.http.fault': fault(3000) } },
          { match: { prefix: '/' }, route: { cluster: 'c' } },
        ] },
        { name: 'b', domains: ['b'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c' } }] },
      ],
    });
    const of = (vh: number, r: number): unknown => rc.virtualHosts[vh]!.routes[r]!.perFilter.get('envoy.filters.http.fault');
    assert.notDeepEqual(of(0, 0), of(0, 1));
    assert.notDeepEqual(of(0, 1), of(1, 0));
    assert.ok(of(1, 0) !== undefined, 'the route config level reaches a virtual host without its own');
    assert.deepEqual(of(0, 0), compileRouteConfig({ virtual_hosts: [{ domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c' }, typed_per_filter_config: { 'envoy.filters.http.fault': fault(3000) } }] }] }).virtualHosts[0]!.routes[0]!.perFilter.get('envoy.filters.http.fault'));
  });
  test('the sidecar listener with local_ratelimit and fault before the router compiles', () => {
    const ls = golden['type.googleapis.com/envoy.config.listener.v3.Listener']!.filter((l) => l.name === 'outbound');
    const l = compileListener(ls[0]);
    assert.deepEqual(l!.hcm!.httpFilters.map((f) => f.name), ['envoy.filters.http.local_ratelimit', 'envoy.filters.http.fault']);
  });
  test('every resource of the golden compiles (nothing the control plane emits for policies is NACKed)', () => {
    const compilers: Record<string, (v: unknown) => unknown> = {
      Cluster: (v) => compileCluster(v), ClusterLoadAssignment: (v) => compileLoadAssignment(v), Listener: (v) => compileListener(v), RouteConfiguration: (v) => compileRouteConfig(v),
    };
    for (const [url, list] of Object.entries(golden)) {
      const kind = url.slice(url.lastIndexOf('.') + 1);
      for (const r of list) assert.doesNotThrow(() => compilers[kind]!(r), `${kind} ${String(r.name ?? r.cluster_name)}`);
    }
  });
  test('refused: unknown health checker, tcp payloads', () => {
    refuses(() => compileCluster({ name: 'a', type: 'EDS', health_checks: [{ timeout: '1s', interval: '1s', healthy_threshold: 1, unhealthy_threshold: 1, custom_health_check: {} }] }), /health_checks\[0\]: needs http_health_check/);
    refuses(() => compileCluster({ name: 'a', type: 'EDS', health_checks: [{ timeout: '1s', interval: '1s', healthy_threshold: 1, unhealthy_threshold: 1, tcp_health_check: { send: { text: '00' } } }] }), /send\/receive payloads/);
  });
});

describe('route configs', () => {
  test('domain wildcards must be a prefix or suffix; duplicates refused', () => {
    refuses(() => compileRouteConfig({ virtual_hosts: [{ name: 'a', domains: ['a.*.b'], routes: [] }] }), /wildcard may only be/);
    refuses(() => compileRouteConfig({ virtual_hosts: [{ name: 'a', domains: ['x'] }, { name: 'b', domains: ['X'] }] }), /appears in more than one virtual host/);
  });

  test('unsupported features are refused with their path', () => {
    const rc = (route: Record<string, unknown>): unknown => ({ virtual_hosts: [{ name: 'v', domains: ['*'], routes: [route] }] });
    refuses(() => compileRouteConfig(rc({ match: { prefix: '/' }, route: { cluster: 'c', retry_policy: { retry_on: '5xx', retry_priority: { name: 'x' } } } })), /virtual_hosts\[0\]\.routes\[0\]\.route\.retry_policy\.retry_priority: not supported yet/);
    refuses(() => compileRouteConfig(rc({ match: { prefix: '/' }, route: { cluster: 'c', retry_policy: { retry_on: '5xx,bogus' } } })), /retry_policy\.retry_on: unknown or unsupported retry condition "bogus"/);
    refuses(() => compileRouteConfig(rc({ match: { prefix: '/', grpc: {} }, route: { cluster: 'c' } })), /match\.grpc: not supported yet/);
    refuses(() => compileRouteConfig(rc({ match: { safe_regex: { regex: '(a)\\1' } }, route: { cluster: 'c' } })), /backreferences/);
    refuses(() => compileRouteConfig(rc({ match: { prefix: '/' }, route: { weighted_clusters: { clusters: [{ name: 'a', weight: 0 }] } } })), /weights must sum/);
    refuses(() => compileRouteConfig(rc({ match: {}, route: { cluster: 'c' } })), /needs one of prefix, path, safe_regex, path_separated_prefix/);
  });

  test('retry_policy compiles with Envoy defaults; the route policy replaces the virtual host one', () => {
    const r = compileRouteConfig({ virtual_hosts: [{
      name: 'v', domains: ['*'], retry_policy: { retry_on: 'connect-failure' },
      routes: [
        { match: { prefix: '/a' }, route: { cluster: 'c', retry_policy: { retry_on: '5xx,retriable-status-codes,unavailable', num_retries: { value: 3 }, per_try_timeout: '2s', retriable_status_codes: [409], retry_back_off: { base_interval: '0.01s' } } } },
        { match: { prefix: '/' }, route: { cluster: 'c' } },
      ],
    }] });
    const [a, b] = r.virtualHosts[0]!.routes.map((x) => (x.action.kind === 'forward' ? x.action.retry : undefined));
    assert.deepEqual([...a!.on], ['5xx', 'retriable-status-codes', 'unavailable']);
    assert.equal(a!.numRetries, 3);
    assert.equal(a!.perTryTimeoutMs, 2000);
    assert.equal(a!.backoffBaseMs, 10);
    assert.equal(a!.backoffMaxMs, 100);
    assert.ok(a!.retriableStatusCodes.has(409));
    assert.deepEqual([...b!.on], ['connect-failure']);
    assert.equal(b!.numRetries, 1);
    assert.equal(b!.backoffBaseMs, 25);
  });

  test('route timeout defaults to 15 s; 0 disables it', () => {
    const rc = (timeout?: unknown) => compileRouteConfig({ virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c', timeout } }] }] });
    const t = (r: ReturnType<typeof rc>): number => { const a = r.virtualHosts[0]!.routes[0]!.action; return a.kind === 'forward' ? a.timeoutMs : -1; };
    assert.equal(t(rc()), 15_000);
    assert.equal(t(rc({ seconds: '0' })), 0);
    assert.equal(t(rc('2s')), 2000);
  });
});

describe('listeners', () => {
  const hcm = (extra: Record<string, unknown> = {}) => ({
    '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
    rds: { route_config_name: 'r', config_source: { ads: {} } },
    http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
    ...extra,
  });
  const l = (typed: unknown) => ({ name: 'l', address: { socket_address: { address: '0.0.0.0', port_value: 15001 } }, filter_chains: [{ filters: [{ name: 'hcm', typed_config: typed }] }] });

  test('an HCM listener with RDS compiles', () => {
    const c = compileListener(l(hcm()))!;
    assert.equal(c.port, 15001);
    assert.equal(c.hcm?.rdsName, 'r');
  });

  test('api_listener (proxyless gRPC) is skipped, not bound', () => {
    assert.equal(compileListener({ name: 'xds:///a.b:80', api_listener: { api_listener: {} } }), undefined);
  });

  test('unknown HTTP filters are refused unless optional; the router must be last', () => {
    const fault = { name: 'envoy.filters.http.fault', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault' } };
    const router = { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } };
    const jwt = { name: 'envoy.filters.http.ext_authz', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz' } };
    refuses(() => compileListener(l(hcm({ http_filters: [jwt, router] }))), /ExtAuthz is not supported yet/);
    assert.equal(compileListener(l(hcm({ http_filters: [{ ...jwt, is_optional: true }, router] })))!.hcm!.httpFilters.length, 0);
    assert.deepEqual(compileListener(l(hcm({ http_filters: [fault, router] })))!.hcm!.httpFilters.map((f) => f.name), ['envoy.filters.http.fault']);
    refuses(() => compileListener(l(hcm({ http_filters: [router, { ...fault, is_optional: true }] }))), /router filter must be the last/);
  });

  test('tcp_proxy filter chains compile; its unsupported fields and other network filters are refused', () => {
    const tcp = compileListener(l({ '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', stat_prefix: 't', cluster: 'c', idle_timeout: '2s' }));
    assert.equal(tcp?.tcp?.cluster, 'c');
    assert.equal(tcp?.tcp?.idleTimeoutMs, 2000);
    assert.equal(tcp?.hcm, undefined);
    const w = compileListener(l({ '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', weighted_clusters: { clusters: [{ name: 'a', weight: 1 }, { name: 'b', weight: 0 }] } }));
    assert.deepEqual(w?.tcp?.weighted, { clusters: [{ name: 'a', weight: 1 }], total: 1 });
    refuses(() => compileListener(l({ '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', cluster: 'c', tunneling_config: {} })), /tunneling_config: not supported/);
    refuses(() => compileListener(l({ '@type': 'type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy' })), /RedisProxy is not supported/);
  });

  test('HCM limits, upgrade configs and codec', () => {
    const c = compileListener(l(hcm({ max_request_headers_kb: 8, common_http_protocol_options: { max_headers_count: 20 }, codec_type: 'HTTP2' })));
    assert.equal(c?.hcm?.maxRequestHeadersBytes, 8192);
    assert.equal(c?.hcm?.maxHeadersCount, 20);
    assert.equal(c?.hcm?.codec, 'HTTP2');
    assert.deepEqual([...c!.hcm!.upgradeTypes], ['websocket']);
    const none = compileListener(l(hcm({ upgrade_configs: [{ upgrade_type: 'websocket', enabled: false }] })));
    assert.equal(none?.hcm?.upgradeTypes.size, 0);
    refuses(() => compileListener(l(hcm({ codec_type: 'HTTP3' }))), /HTTP\/3 listeners are not supported/);
  });
});

test('oneof markers from proto-loader are dropped from dumps, real fields kept', () => {
  registerOneofNames(envoyPackageDefinition());
  const raw = { name: 'match', match: { prefix: '/', path_specifier: 'prefix' }, address: { socket_address: { address: '1.2.3.4' }, address: 'socket_address' } };
  assert.deepEqual(stripOneofMarkers(raw), { name: 'match', match: { prefix: '/' }, address: { socket_address: { address: '1.2.3.4' } } });
  // An RBAC permission as decoded from the wire: `rule` names the member that is set.
  assert.deepEqual(stripOneofMarkers({ permissions: [{ any: true, rule: 'any' }], principals: [{ authenticated: { principal_name: { exact: 'spiffe://a/ns/b/sa/c', match_pattern: 'exact' } }, identifier: 'authenticated' }] }),
    { permissions: [{ any: true }], principals: [{ authenticated: { principal_name: { exact: 'spiffe://a/ns/b/sa/c' } } }] });
  // A nested message's oneof (MetadataKey.PathSegment's `segment`).
  assert.deepEqual(stripOneofMarkers({ path: [{ key: 'iss', segment: 'key' }] }), { path: [{ key: 'iss' }] });
});
