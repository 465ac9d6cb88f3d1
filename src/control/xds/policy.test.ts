import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServiceSpec } from '../../api/service/service.js';
import type { WorkloadSpec } from '../../api/workload/workload.js';
import type { HTTPRouteSpec } from '../../api/httproute/httproute.js';
import type { TCPRouteSpec } from '../../api/tcproute/tcproute.js';
import type { BackendPolicySpec } from '../../api/backendpolicy/backendpolicy.js';
import { CLUSTER, LISTENER, PUSH_ORDER, ROUTE_CONFIGURATION } from '../../xds/type-urls.js';
import { buildSnapshot } from './snapshot.js';
import { tcpPortConflicts } from './listeners.js';
import type { GrpcRouteSpecLike, MeshInput, ProxyView } from './model.js';
import { golden, assertValidEnvoy, fixture } from './golden-fixtures.js';

/** BackendPolicy and TCPRoute translation: golden files (UPDATE_GOLDEN=1 rewrites them) and proto checks. */

function loadInput(): MeshInput {
  const { by } = fixture('policy.input.yaml');
  return {
    services: by<ServiceSpec>('Service'),
    workloads: by<WorkloadSpec>('Workload'),
    httpRoutes: by<HTTPRouteSpec>('HTTPRoute'),
    grpcRoutes: by<GrpcRouteSpecLike>('GRPCRoute'),
    tcpRoutes: by<TCPRouteSpec>('TCPRoute'),
    backendPolicies: by<BackendPolicySpec>('BackendPolicy'),
  };
}

const PROXY: ProxyView = { namespace: 'default' };
const GRPC: ProxyView = { namespace: 'default', client: 'grpc' };

type Obj = Record<string, unknown>;
function find(list: Obj[] | undefined, name: string): Obj {
  const r = list?.find((x) => x.name === name);
  assert.ok(r, name);
  return r;
}

test('policies translate to the golden xDS resources (Weft proxy view)', () => {
  golden('policy-proxy', buildSnapshot(loadInput(), PROXY).toJSON());
});

test('policies translate to the golden xDS resources (proxyless gRPC view: degraded clusters)', () => {
  golden('policy-grpc', buildSnapshot(loadInput(), GRPC).toJSON());
});

test('every resource of both views is valid Envoy v3 and survives the wire', () => {
  for (const view of [PROXY, GRPC]) {
    const snap = buildSnapshot(loadInput(), view);
    for (const t of PUSH_ORDER) for (const name of snap.names(t)) assertValidEnvoy(t, snap.get(t, name)?.resource ?? {});
  }
});

test('gRPC clusters only use ROUND_ROBIN or RING_HASH and carry no health checks', () => {
  const grpc = buildSnapshot(loadInput(), GRPC).toJSON()[CLUSTER] ?? [];
  const proxy = buildSnapshot(loadInput(), PROXY).toJSON()[CLUSTER] ?? [];
  for (const c of grpc) {
    assert.ok(['ROUND_ROBIN', 'RING_HASH'].includes(String(c.lb_policy)), `${String(c.name)}: ${String(c.lb_policy)}`);
    assert.equal(c.health_checks, undefined);
  }
  assert.equal(find(proxy, 'outbound|80||catalog.default.svc.cluster.local').lb_policy, 'LEAST_REQUEST');
  assert.equal(find(grpc, 'outbound|80||catalog.default.svc.cluster.local').lb_policy, 'ROUND_ROBIN');
  assert.equal(find(proxy, 'outbound|9090||catalog.default.svc.cluster.local').lb_policy, 'MAGLEV');
  assert.equal(find(grpc, 'outbound|9090||catalog.default.svc.cluster.local').lb_policy, 'RING_HASH');
  // The port policy set loadBalancer and healthCheck; the Service-wide one still supplies connectionPool.
  const c9090 = find(proxy, 'outbound|9090||catalog.default.svc.cluster.local');
  assert.deepEqual((c9090.health_checks as Obj[])[0]?.grpc_health_check, {});
  assert.equal(((c9090.circuit_breakers as { thresholds: Obj[] }).thresholds[0]?.max_connections as { value: number }).value, 100);
});

test('route rule policy beats the Service policy; HCM carries fault and rate-limit filters before the router', () => {
  const snap = buildSnapshot(loadInput(), PROXY).toJSON();
  const outbound = find(snap[ROUTE_CONFIGURATION], 'outbound');
  const vh = find(outbound.virtual_hosts as Obj[], 'catalog.default:80');
  const [search, main] = vh.routes as Obj[];
  assert.equal(((search?.route as Obj).retry_policy as Obj).retry_on, 'reset');
  assert.ok((search?.typed_per_filter_config as Obj)['envoy.filters.http.local_ratelimit']);
  assert.equal(((main?.route as Obj).retry_policy as Obj).retry_on, '5xx,connect-failure,retriable-status-codes,unavailable');
  const listener = find(snap[LISTENER], 'outbound');
  const hcm = ((listener.default_filter_chain as Obj).filters as Obj[])[0]?.typed_config as Obj;
  assert.deepEqual(
    (hcm.http_filters as Obj[]).map((f) => f.name),
    ['envoy.filters.http.local_ratelimit', 'envoy.filters.http.fault', 'envoy.filters.http.router'],
  );
  // The listener-level rate limit filter has no bucket: it limits nothing by itself.
  assert.equal(((hcm.http_filters as Obj[])[0]?.typed_config as Obj).token_bucket, undefined);
});

test('TCP: a listener per tcp port on 127.0.0.1, TCPRoute rules merged by weight, one listener per port number', () => {
  const snap = buildSnapshot(loadInput(), PROXY).toJSON();
  const l = find(snap[LISTENER], 'tcp|ledger.default:5432');
  assert.deepEqual(l.address, { socket_address: { address: '127.0.0.1', port_value: 5432 } });
  const tp = ((l.default_filter_chain as Obj).filters as Obj[])[0]?.typed_config as Obj;
  assert.deepEqual(tp.weighted_clusters, {
    clusters: [
      { name: 'outbound|5432||ledger.default.svc.cluster.local', weight: 90 },
      { name: 'outbound|15432||ledger-v2.default.svc.cluster.local', weight: 10 },
    ],
  });
  assert.ok(find(snap[LISTENER], 'tcp|cache.default:6379'));
  assert.equal((snap[LISTENER] ?? []).find((x) => x.name === 'tcp|cache.shop:6379'), undefined);
  assert.deepEqual(tcpPortConflicts(loadInput(), PROXY), [{ service: { name: 'cache', namespace: 'shop' }, port: 6379, lostTo: { name: 'cache', namespace: 'default' } }]);
  // In the shop view, shop's own cache wins the port.
  const shop = buildSnapshot(loadInput(), { namespace: 'shop' }).toJSON();
  assert.ok(find(shop[LISTENER], 'tcp|cache.shop:6379'));
});

test('gRPC routes: only gRPC retry conditions, max_stream_duration, header hash only, no rate limit', () => {
  const snap = buildSnapshot(loadInput(), GRPC).toJSON();
  const rc = find(snap[ROUTE_CONFIGURATION], 'catalog.default:9090');
  const route = ((rc.virtual_hosts as Obj[])[0]?.routes as Obj[])[0] as Obj;
  const ra = route.route as Obj;
  assert.equal((ra.retry_policy as Obj).retry_on, 'unavailable');
  assert.equal((ra.retry_policy as Obj).per_try_timeout, undefined);
  assert.deepEqual(ra.max_stream_duration, { max_stream_duration: { seconds: 10 } });
  assert.deepEqual(ra.hash_policy, [{ header: { header_name: 'x-user' } }]);
  assert.ok((route.typed_per_filter_config as Obj)['envoy.filters.http.fault']);
  const inv = find(snap[ROUTE_CONFIGURATION], 'catalog.default:80');
  // Rule "search" has only `reset`, which gRPC cannot retry on: no retry policy at all.
  const searchRoutes = ((inv.virtual_hosts as Obj[])[0]?.routes as Obj[]).filter((r) => String(r.name).includes('rule0'));
  for (const r of searchRoutes) assert.equal((r.route as Obj).retry_policy, undefined);
  const inventory = find(snap[ROUTE_CONFIGURATION], 'inventory.default:7070');
  const ir = ((inventory.virtual_hosts as Obj[])[0]?.routes as Obj[])[0] as Obj;
  assert.equal((ir.route as Obj).hash_policy, undefined, 'cookie hashing is not something gRPC does');
  assert.equal(ir.typed_per_filter_config, undefined);
  const listener = find(snap[LISTENER], 'catalog.default:9090');
  const hcm = (listener.api_listener as Obj).api_listener as Obj;
  assert.deepEqual((hcm.http_filters as Obj[]).map((f) => f.name), ['envoy.filters.http.fault', 'envoy.filters.http.router']);
});

test('no policies: the output is what it was before policies existed', () => {
  const input = loadInput();
  const without = buildSnapshot({ ...input, backendPolicies: [] }, PROXY).toJSON();
  for (const c of without[CLUSTER] ?? []) {
    assert.equal(c.lb_policy, 'ROUND_ROBIN');
    assert.deepEqual(c.connect_timeout, { seconds: 10 });
    assert.equal(c.circuit_breakers, undefined);
  }
});
