// Compilation of xDS resources: defaults, parsing of proto JSON forms, and clear
// refusals (each becomes a NACK's error_detail) of what the proxy cannot honour.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileCluster } from './compile-cluster.js';
import { compileLoadAssignment } from './compile-endpoints.js';
import { compileListener } from './compile-listener.js';
import { compileRouteConfig } from './compile-route.js';
import { ConfigError } from './proto-values.js';
import { stripOneofMarkers } from './state.js';

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
    refuses(() => compileCluster({ name: 'a', type: 'STRICT_DNS' }), /STRICT_DNS clusters are not supported/);
    refuses(() => compileCluster({ name: 'a', type: 'EDS', transport_socket: { name: 'tls', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext' } } }), /upstream TLS/);
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
    assert.equal(a.endpoints[0]!.weight, 6);
    assert.equal(a.endpoints[0]!.health, 'HEALTHY');
    assert.equal(a.endpoints[0]!.locality, '/z1/');
    assert.equal(a.endpoints[1]!.priority, 1);
    assert.equal(a.endpoints[1]!.health, 'UNKNOWN');
    refuses(() => compileLoadAssignment({ cluster_name: 'c', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'example.com', port_value: 80 } } } }] }] }), /not an IP literal/);
  });
});

describe('route configs', () => {
  test('domain wildcards must be a prefix or suffix; duplicates refused', () => {
    refuses(() => compileRouteConfig({ virtual_hosts: [{ name: 'a', domains: ['a.*.b'], routes: [] }] }), /wildcard may only be/);
    refuses(() => compileRouteConfig({ virtual_hosts: [{ name: 'a', domains: ['x'] }, { name: 'b', domains: ['X'] }] }), /appears in more than one virtual host/);
  });

  test('unsupported features are refused with their path', () => {
    const rc = (route: Record<string, unknown>): unknown => ({ virtual_hosts: [{ name: 'v', domains: ['*'], routes: [route] }] });
    refuses(() => compileRouteConfig(rc({ match: { prefix: '/' }, route: { cluster: 'c', retry_policy: { num_retries: 2 } } })), /virtual_hosts\[0\]\.routes\[0\]\.route\.retry_policy: not supported yet/);
    refuses(() => compileRouteConfig(rc({ match: { prefix: '/', grpc: {} }, route: { cluster: 'c' } })), /match\.grpc: not supported yet/);
    refuses(() => compileRouteConfig(rc({ match: { safe_regex: { regex: '(a)\\1' } }, route: { cluster: 'c' } })), /backreferences/);
    refuses(() => compileRouteConfig(rc({ match: { prefix: '/' }, route: { weighted_clusters: { clusters: [{ name: 'a', weight: 0 }] } } })), /weights must sum/);
    refuses(() => compileRouteConfig(rc({ match: {}, route: { cluster: 'c' } })), /needs one of prefix, path, safe_regex, path_separated_prefix/);
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
    refuses(() => compileListener(l(hcm({ http_filters: [fault, router] }))), /HTTPFault is not supported yet/);
    assert.ok(compileListener(l(hcm({ http_filters: [{ ...fault, is_optional: true }, router] }))));
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
  const raw = { name: 'match', match: { prefix: '/', path_specifier: 'prefix' }, address: { socket_address: { address: '1.2.3.4' }, address: 'socket_address' } };
  assert.deepEqual(stripOneofMarkers(raw), { name: 'match', match: { prefix: '/' }, address: { socket_address: { address: '1.2.3.4' } } });
});
