import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDocuments } from '../parse.js';
import { validateDocuments } from '../validate.js';
import { formatFieldError } from '../../lib/errors.js';
import type { TCPRouteSpec } from './tcproute.js';

function check(yaml: string) {
  const p = parseDocuments(yaml, 'tcp.yaml');
  assert.deepEqual(p.errors, []);
  return validateDocuments(p.docs, { exists: (k) => k.kind === 'Service' && k.name.startsWith('ledger') });
}

for (const version of ['v1alpha2', 'v1']) {
  test(`a TCPRoute (${version}) splits connections by weight`, () => {
    const r = check(`apiVersion: gateway.networking.k8s.io/${version}
kind: TCPRoute
metadata: {name: ledger}
spec:
  parentRefs: [{group: "", kind: Service, name: ledger, port: 9000}]
  rules:
  - backendRefs:
    - {name: ledger, port: 9000, weight: 3}
    - {name: ledger-next, port: 9000}
`);
    assert.deepEqual(r.errors.map(formatFieldError), []);
    assert.equal(r.resources[0]?.apiVersion, 'gateway.networking.k8s.io/v1alpha2');
    const s = r.resources[0]?.spec as TCPRouteSpec;
    assert.deepEqual(s.rules[0]?.backendRefs[1], { group: '', kind: 'Service', name: 'ledger-next', namespace: 'default', port: 9000, weight: 1 });
  });
}

test('bad TCPRoutes report every mistake with its path', () => {
  const r = check(`apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: a}
spec:
  parentRefs: [{kind: Service, name: ledger}]
  rules: []
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: b}
spec:
  parentRefs: [{kind: Service, name: ledger}]
  rules:
  - backendRefs: [{name: ledger}, {name: ledger, port: 9000, weight: -5}]
    matches: []
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: c}
spec:
  rules:
  - name: one
    backendRefs: [{name: ledger}]
  - name: one
    backendRefs: [{kind: Pod, name: ledger, port: 9000}]
`);
  assert.deepEqual(r.errors.map(formatFieldError).sort(), [
    'tcp.yaml#1 spec.rules: must NOT have fewer than 1 items',
    'tcp.yaml#2 spec.rules[0].backendRefs[1].weight: must be ≥ 0',
    'tcp.yaml#2 spec.rules[0].matches: unknown field',
    'tcp.yaml#3 spec.parentRefs: a mesh route must name at least one parent Service (kind: Service, group: "")',
    'tcp.yaml#3 spec.rules[0].backendRefs[0].port: is required for a Service backend',
    'tcp.yaml#3 spec.rules[1].backendRefs[0]: core/Pod is not a backend Weft knows: use kind Service (group "" or weft.dev)',
    'tcp.yaml#3 spec.rules[1].name: "one" is already the name of rules[0]',
  ]);
});
