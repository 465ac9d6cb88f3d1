import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDocuments } from '../parse.js';
import { validateDocuments } from '../validate.js';
import { formatFieldError } from '../../lib/errors.js';

function check(yaml: string) {
  const p = parseDocuments(yaml, 'svc.yaml');
  assert.deepEqual(p.errors, []);
  return validateDocuments(p.docs, { exists: () => false });
}

test('a valid Service gets defaults: namespace, targetPort, protocol', () => {
  const r = check(`apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: catalog}
spec:
  selector: {app: catalog}
  ports: [{port: 80, targetPort: 8080}]
`);
  assert.deepEqual(r.errors, []);
  const s = r.resources[0];
  assert.equal(s?.metadata.namespace, 'default');
  assert.deepEqual((s?.spec as { ports: unknown[] }).ports[0], { port: 80, targetPort: 8080, protocol: 'http' });
});

test('bad Service reports every mistake with its path', () => {
  const r = check(`apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: Catalog}
spec:
  ports:
  - {name: a, port: 80, protocol: udp}
  - {name: a, port: 80}
  - {port: 70000}
`);
  const lines = r.errors.map(formatFieldError).sort();
  assert.deepEqual(r.resources, []);
  assert.ok(lines.some((l) => l.startsWith('svc.yaml#1 metadata.name: must match')), lines.join('\n'));
  assert.ok(lines.some((l) => l.startsWith('svc.yaml#1 spec.ports[0].protocol:')), lines.join('\n'));
  assert.ok(lines.some((l) => l.startsWith('svc.yaml#1 spec.ports[2].port: must be ≤ 65535')), lines.join('\n'));
});

test('semantic checks: duplicate port and name, unnamed port among many', () => {
  const r = check(`apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: catalog}
spec:
  ports:
  - {name: a, port: 80}
  - {name: a, port: 80}
  - {port: 81}
`);
  assert.deepEqual(r.errors.map(formatFieldError).sort(), [
    'svc.yaml#1 spec.ports[1].name: name "a" is listed twice',
    'svc.yaml#1 spec.ports[1].port: port 80 is listed twice',
    'svc.yaml#1 spec.ports[2].name: is required when a service has more than one port',
  ]);
});

test('a reference to an invalid object in the same input is not reported twice', () => {
  const p = parseDocuments(`apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: catalog}
spec:
  ports: [{port: 0}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: catalog}
spec:
  parentRefs: [{kind: Service, group: "", name: catalog, port: 80}]
  rules: [{backendRefs: [{name: catalog, port: 80}]}]
`, 'in.yaml');
  const r = validateDocuments(p.docs, { exists: () => false });
  assert.deepEqual(r.errors.map(formatFieldError), ['in.yaml#1 spec.ports[0].port: must be ≥ 1']);
});
