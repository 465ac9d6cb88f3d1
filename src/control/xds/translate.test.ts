import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkXdsResource } from '../../xds/proto-check.js';
import { LISTENER, PUSH_ORDER } from '../../xds/type-urls.js';
import { buildSnapshot } from './snapshot.js';
import type { GrpcRouteSpecLike, MeshInput } from './model.js';
import type { ServiceSpec } from '../../api/service/service.js';
import type { WorkloadSpec } from '../../api/workload/workload.js';
import type { HTTPRouteSpec } from '../../api/httproute/httproute.js';
import { serverListenerName } from './names.js';
import { golden, assertValidEnvoy, fixture } from './golden-fixtures.js';

function loadInput(): MeshInput {
  const { by } = fixture('mesh.input.yaml');
  return {
    services: by<ServiceSpec>('Service'),
    workloads: by<WorkloadSpec>('Workload'),
    httpRoutes: by<HTTPRouteSpec>('HTTPRoute'),
    grpcRoutes: by<GrpcRouteSpecLike>('GRPCRoute'),
  };
}

test('mesh translates to the golden xDS resources (view: default)', () => {
  const snap = buildSnapshot(loadInput(), { namespace: 'default' });
  golden('mesh-default', snap.toJSON());
});

test('mesh translates to the golden xDS resources (view: shop: bare names follow the namespace)', () => {
  const snap = buildSnapshot(loadInput(), { namespace: 'shop' });
  golden('mesh-shop', snap.toJSON());
});

test('every generated resource is valid Envoy v3 and survives the wire', () => {
  const snap = buildSnapshot(loadInput(), { namespace: 'default' });
  let n = 0;
  for (const t of PUSH_ORDER) {
    for (const name of snap.names(t)) {
      const e = snap.get(t, name);
      assert.ok(e);
      assertValidEnvoy(t, e.resource);
      n++;
    }
  }
  const server = snap.get(LISTENER, serverListenerName('127.0.0.1:50051'));
  assert.ok(server);
  assertValidEnvoy(LISTENER, server.resource);
  assert.ok(n > 10);
});

test('the checker catches a typo that protobufjs would silently drop', () => {
  const errs = checkXdsResource(LISTENER, { name: 'x', api_listener: { api_listener: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', stat_prefx: 'x' } } });
  assert.deepEqual(errs, ['api_listener.api_listener.stat_prefx: no such field in envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager']);
  assert.equal(checkXdsResource(LISTENER, { name: 'x', traffic_direction: 'SIDEWAYS' }).length, 1);
});

test('server listener names: IPv4 and IPv6, malformed ones are not listeners', () => {
  const snap = buildSnapshot(loadInput(), { namespace: 'default' });
  const v6 = snap.get(LISTENER, serverListenerName('[::1]:443'));
  assert.deepEqual((v6?.resource.address as { socket_address: unknown }).socket_address, { address: '::1', port_value: 443 });
  assert.equal(snap.get(LISTENER, serverListenerName('nonsense')), undefined);
  assert.equal(snap.get(LISTENER, 'unknown.default:80'), undefined);
});

test('every locality group has a locality and a load_balancing_weight (gRPC drops it otherwise)', () => {
  const snap = buildSnapshot(loadInput(), { namespace: 'default' });
  for (const j of snap.toJSON()['type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment'] ?? []) {
    for (const g of (j.endpoints as Record<string, unknown>[]) ?? []) {
      assert.ok(g.locality, 'locality');
      assert.ok((g.load_balancing_weight as { value: number }).value > 0, 'weight');
    }
  }
});
