import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDocuments } from '../parse.js';
import { validateDocuments } from '../validate.js';
import { formatFieldError } from '../../lib/errors.js';
import type { MeshSpec } from './mesh.js';

function check(yaml: string) {
  const p = parseDocuments(yaml, 'mesh.yaml');
  assert.deepEqual(p.errors, []);
  return validateDocuments(p.docs, { exists: () => false });
}

test('an empty Mesh spec gets every default', () => {
  const r = check(`apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata: {name: default}
spec: {}
`);
  assert.deepEqual(r.errors, []);
  assert.equal(r.resources[0]?.metadata.namespace, undefined);
  assert.deepEqual(r.resources[0]?.spec as MeshSpec, {
    trustDomain: 'cluster.local',
    mtls: { mode: 'PERMISSIVE' },
    certificates: { workloadTTL: '24h' },
    tracing: { sampling: 1 },
    accessLog: { format: 'json', path: 'stdout' },
    outboundPolicy: 'ALLOW_ANY',
  });
});

test('a full Mesh is kept as written', () => {
  const r = check(`apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata: {name: default}
spec:
  trustDomain: example.org
  mtls: {mode: STRICT}
  certificates: {workloadTTL: 1h30m}
  tracing: {sampling: 0.5, collector: {endpoint: "http://127.0.0.1:4318/v1/traces"}}
  accessLog: {format: text, path: /var/log/weft/access.log}
  outboundPolicy: REGISTRY_ONLY
`);
  assert.deepEqual(r.errors, []);
});

test('bad Mesh values are reported with their paths', () => {
  const r = check(`apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata: {name: default, namespace: default}
spec: {}
---
apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata: {name: default}
spec:
  trustDomain: Cluster.Local
  mtls: {mode: ON}
  tracing: {sampling: 150}
  accessLog: {format: xml}
  outboundPolicy: DENY
---
apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata: {name: short}
spec:
  certificates: {workloadTTL: 30s}
  tracing: {collector: {endpoint: "collector:4318"}}
---
apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata: {name: long}
spec:
  trustDomain: a..b
  certificates: {workloadTTL: 2161h}
`);
  assert.deepEqual(r.errors.map(formatFieldError).sort(), [
    'mesh.yaml#1 metadata.namespace: Mesh is cluster-scoped: remove the namespace',
    'mesh.yaml#2 spec.accessLog.format: must be one of "json", "text"',
    'mesh.yaml#2 spec.mtls.mode: must be one of "STRICT", "PERMISSIVE", "DISABLE"',
    'mesh.yaml#2 spec.outboundPolicy: must be one of "ALLOW_ANY", "REGISTRY_ONLY"',
    'mesh.yaml#2 spec.tracing.sampling: must be ≤ 100',
    'mesh.yaml#2 spec.trustDomain: must match ^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$',
    'mesh.yaml#3 spec.certificates.workloadTTL: must be between 1m and 90d (2160h)',
    'mesh.yaml#3 spec.tracing.collector.endpoint: "collector:4318" is not an http(s) URL',
    'mesh.yaml#4 spec.certificates.workloadTTL: must be between 1m and 90d (2160h)',
    'mesh.yaml#4 spec.trustDomain: must not contain empty labels',
  ]);
});
