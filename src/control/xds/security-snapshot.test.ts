import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../../api/types.js';
import type { ServiceSpec } from '../../api/service/service.js';
import type { WorkloadSpec } from '../../api/workload/workload.js';
import { checkXdsResource } from '../../xds/proto-check.js';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION } from '../../xds/type-urls.js';
import { buildSnapshot, securedFor } from './snapshot.js';
import { INBOUND_PORT_ANNOTATION, MTLS_ANNOTATION } from './security/mesh-tls.js';
import type { MeshInput } from './model.js';
import { golden } from './golden-fixtures.js';

type Obj = Record<string, unknown>;
const svc = (name: string, selector: Record<string, string>): Resource<ServiceSpec> => ({
  apiVersion: 'weft.dev/v1alpha1', kind: 'Service', metadata: { name, namespace: 'shop' }, spec: { selector, ports: [{ port: 80, targetPort: 8080, protocol: 'http' }] },
});
const wl = (name: string, app: string, address: string, annotations?: Record<string, string>): Resource<WorkloadSpec> => ({
  apiVersion: 'weft.dev/v1alpha1', kind: 'Workload', metadata: { name, namespace: 'shop', ...(annotations ? { annotations } : {}) },
  spec: { labels: { app }, address, ports: [], serviceAccount: app, health: 'HEALTHY' },
});
const input: MeshInput = {
  services: [svc('catalog', { app: 'catalog' }), svc('mixed', { app: 'mixed' }), svc('grpcsvc', { app: 'grpcsvc' })],
  workloads: [
    wl('catalog-1', 'catalog', '10.0.0.1', { [INBOUND_PORT_ANNOTATION]: '15006' }),
    wl('mixed-1', 'mixed', '10.0.0.2', { [INBOUND_PORT_ANNOTATION]: '15006' }),
    wl('mixed-2', 'mixed', '10.0.0.3'),
    wl('grpcsvc-1', 'grpcsvc', '10.0.0.4', { [MTLS_ANNOTATION]: 'true' }),
  ],
  httpRoutes: [],
  grpcRoutes: [],
};
const cluster = (snap: ReturnType<typeof buildSnapshot>, name: string): Obj => snap.get(CLUSTER, `outbound|80||${name}.shop.svc.cluster.local`)!.resource;

test('a sidecar view shares EDS and RDS with the view without a service and adds its inbound listener', () => {
  const base = buildSnapshot(input, { namespace: 'shop' });
  const own = securedFor(base, input, { namespace: 'shop', service: 'catalog' });
  assert.equal(own.token(CLUSTER_LOAD_ASSIGNMENT), base.token(CLUSTER_LOAD_ASSIGNMENT));
  assert.equal(own.token(ROUTE_CONFIGURATION), base.token(ROUTE_CONFIGURATION));
  assert.ok(own.get(LISTENER, 'inbound'));
  assert.equal(base.get(LISTENER, 'inbound'), undefined);
  assert.ok(own.get(CLUSTER, 'inbound|8080||'));
});

test('auto-mTLS: all sidecars → transport_socket, mixed → transport_socket_matches; valid Envoy', () => {
  const snap = buildSnapshot(input, { namespace: 'shop' });
  const all = cluster(snap, 'catalog');
  assert.ok(all.transport_socket);
  const mixed = cluster(snap, 'mixed');
  assert.equal(mixed.transport_socket, undefined);
  assert.equal((mixed.transport_socket_matches as Obj[])[0]!.name, 'tlsMode-weft');
  for (const c of [all, mixed]) assert.deepEqual(checkXdsResource(CLUSTER, c), []);
  const cla = snap.get(CLUSTER_LOAD_ASSIGNMENT, 'outbound|80||mixed.shop.svc.cluster.local')!.resource;
  assert.deepEqual(checkXdsResource(CLUSTER_LOAD_ASSIGNMENT, cla), []);
  const eps = JSON.stringify(cla);
  assert.match(eps, /"address":"10.0.0.2","port_value":15006/);
  assert.match(eps, /"address":"10.0.0.3","port_value":8080/);
});

test('proxyless gRPC: no TLS unless it asked; with WEFT_GRPC_MTLS, certificate-provider TLS and an mTLS server listener', () => {
  const plain = buildSnapshot(input, { namespace: 'shop', client: 'grpc' });
  assert.equal(cluster(plain, 'grpcsvc').transport_socket, undefined);
  const secured = buildSnapshot(input, { namespace: 'shop', client: 'grpc', grpcMtls: true, service: 'grpcsvc' });
  const c = cluster(secured, 'grpcsvc');
  assert.match(JSON.stringify(c.transport_socket), /"tls_certificate_provider_instance":\{"instance_name":"weft"/);
  assert.equal(cluster(secured, 'mixed').transport_socket, undefined, 'gRPC has no transport_socket_matches: mixed stays plaintext');
  assert.deepEqual(checkXdsResource(CLUSTER, c), []);
  const l = secured.get(LISTENER, 'grpc/server?xds.resource.listening_address=10.0.0.4:8080')!.resource;
  assert.match(JSON.stringify(l), /"require_client_certificate":\{"value":true\}/);
  assert.deepEqual(checkXdsResource(LISTENER, l), []);
});

test('golden: the snapshot of a catalog sidecar (inbound listener, auto-mTLS clusters, EDS at inbound ports)', () => {
  const snap = buildSnapshot(input, { namespace: 'shop', service: 'catalog' });
  golden('snapshot-sidecar-catalog', JSON.parse(JSON.stringify(snap.toJSON())));
});
