import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDocuments } from '../parse.js';
import { validateDocuments } from '../validate.js';
import { formatFieldError } from '../../lib/errors.js';
import { spiffeIdOf, workloadKind, type WorkloadSpec } from './workload.js';
import type { Resource } from '../types.js';

function check(yaml: string) {
  const p = parseDocuments(yaml, 'wl.yaml');
  assert.deepEqual(p.errors, []);
  return validateDocuments(p.docs, { exists: () => false });
}

test('a minimal Workload gets defaults; metadata labels become the selectable labels', () => {
  const r = check(`apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: catalog-1, labels: {app: catalog}}
spec:
  address: 10.0.0.7
  ports: [{port: 8080}]
`);
  assert.deepEqual(r.errors, []);
  const w = r.resources[0] as Resource<WorkloadSpec>;
  assert.deepEqual(w.spec, { address: '10.0.0.7', labels: { app: 'catalog' }, ports: [{ port: 8080 }], serviceAccount: 'default', health: 'HEALTHY' });
  assert.equal(spiffeIdOf(w, 'cluster.local'), 'spiffe://cluster.local/ns/default/sa/default');
  assert.deepEqual(workloadKind.columns.map((c) => c.value(w)), ['10.0.0.7', 'default', 'HEALTHY']);
});

test('IPv6 addresses, locality and explicit labels are kept', () => {
  const r = check(`apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: catalog-2, labels: {team: a}}
spec:
  address: "fd00::7"
  labels: {app: catalog, version: v2}
  serviceAccount: catalog
  locality: {region: eu-west, zone: eu-west-1a}
  weight: 3
  health: DRAINING
`);
  assert.deepEqual(r.errors, []);
  const s = r.resources[0]?.spec as WorkloadSpec;
  assert.deepEqual(s.labels, { app: 'catalog', version: 'v2' });
  assert.equal(s.health, 'DRAINING');
});

test('bad Workloads report every mistake with its path', () => {
  const r = check(`apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: a}
spec:
  address: catalog.default
  ports: [{port: 80}, {port: 80, name: x}, {port: 81, name: x}]
  locality: {subzone: rack1}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: b}
spec:
  address: 300.1.1.1
  health: SICK
  weight: 0
  ports: [{port: 0, protocol: udp}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: c}
spec:
  address: 10.0.0.1
  serviceAccount: Bad_SA
`);
  assert.deepEqual(r.resources, []);
  assert.deepEqual(r.errors.map(formatFieldError).sort(), [
    'wl.yaml#1 spec.address: "catalog.default" is not an IPv4 or IPv6 address',
    'wl.yaml#1 spec.locality.zone: is required when subzone is set',
    'wl.yaml#1 spec.ports[1].port: port 80 is listed twice',
    'wl.yaml#1 spec.ports[2].name: name "x" is listed twice',
    'wl.yaml#2 spec.health: must be one of "HEALTHY", "UNHEALTHY", "DRAINING", "UNKNOWN"',
    'wl.yaml#2 spec.ports[0].port: must be ≥ 1',
    'wl.yaml#2 spec.ports[0].protocol: must be one of "http", "http2", "grpc", "tcp"',
    'wl.yaml#2 spec.weight: must be ≥ 1',
    'wl.yaml#3 spec.serviceAccount: must match ^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$',
  ]);
});
