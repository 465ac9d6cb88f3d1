import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDocuments } from '../parse.js';
import { validateDocuments } from '../validate.js';
import { formatFieldError } from '../../lib/errors.js';
import type { GRPCRouteSpec } from './grpcroute.js';

function check(yaml: string) {
  const p = parseDocuments(yaml, 'grpc.yaml');
  assert.deepEqual(p.errors, []);
  return validateDocuments(p.docs, { exists: (k) => k.kind === 'Service' && k.name.startsWith('inventory') });
}

test('a GAMMA GRPCRoute applies with upstream defaults', () => {
  const r = check(`apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: inventory}
spec:
  parentRefs: [{group: "", kind: Service, name: inventory, port: 50051}]
  rules:
  - matches:
    - method: {service: weft.demo.Inventory, method: Reserve}
      headers: [{name: x-tenant, value: a}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {add: [{name: x-route, value: reserve}]}
    backendRefs: [{name: inventory-v2, port: 50051}]
  - matches: [{method: {type: RegularExpression, service: "weft\\\\.demo\\\\..*"}}]
    backendRefs:
    - {name: inventory, port: 50051, weight: 9}
    - {name: inventory-v2, port: 50051}
`);
  assert.deepEqual(r.errors.map(formatFieldError), []);
  const s = r.resources[0]?.spec as GRPCRouteSpec;
  assert.deepEqual(s.rules[0]?.matches?.[0], { method: { type: 'Exact', service: 'weft.demo.Inventory', method: 'Reserve' }, headers: [{ type: 'Exact', name: 'x-tenant', value: 'a' }] });
  assert.deepEqual(s.rules[1]?.backendRefs?.map((b) => [b.name, b.weight, b.namespace, b.kind]), [['inventory', 9, 'default', 'Service'], ['inventory-v2', 1, 'default', 'Service']]);
});

test('bad GRPCRoutes report every mistake with its path', () => {
  const r = check(`apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: bad}
spec:
  parentRefs: [{kind: Service, name: inventory}]
  rules:
  - matches:
    - method: {}
    - method: {service: "weft/demo", method: "Re-serve"}
    - method: {type: RegularExpression, method: "(?!x)"}
      headers: [{name: a, value: x}, {name: A, value: y}]
    filters:
    - type: URLRewrite
    - type: RequestHeaderModifier
      requestHeaderModifier: {}
    backendRefs: [{name: inventory, port: 50051, weight: 2000000}, {name: gone, port: 1}]
`);
  assert.deepEqual(r.errors.map(formatFieldError).sort(), [
    'grpc.yaml#1 spec.rules[0].backendRefs[0].weight: must be ≤ 1000000',
    'grpc.yaml#1 spec.rules[0].filters[0].type: must be one of "ResponseHeaderModifier", "RequestHeaderModifier", "RequestMirror", "ExtensionRef"',
  ]);
  const r2 = check(`apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: bad}
spec:
  parentRefs: [{kind: Service, name: inventory}]
  rules:
  - matches:
    - method: {}
    - method: {service: "weft/demo", method: "Re-serve"}
    - method: {type: RegularExpression, method: "(?!x)"}
      headers: [{name: a, value: x}, {name: A, value: y}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {}
    backendRefs: [{name: inventory, port: 50051}, {name: gone, port: 1}]
`);
  assert.deepEqual(r2.errors.map(formatFieldError).sort(), [
    'grpc.yaml#1 spec.rules[0].filters[0].requestHeaderModifier: must set, add or remove at least one header',
    'grpc.yaml#1 spec.rules[0].matches[0].method: one or both of service and method must be specified',
    'grpc.yaml#1 spec.rules[0].matches[1].method.method: "Re-serve" is not a gRPC method name',
    'grpc.yaml#1 spec.rules[0].matches[1].method.service: "weft/demo" is not a gRPC service name (package.Service)',
    'grpc.yaml#1 spec.rules[0].matches[2].headers[1].name: "A" is matched twice; a request has one value to compare',
    'grpc.yaml#1 spec.rules[0].matches[2].method.method: lookaround assertions are not supported (RE2)',
  ]);
  // Only once the object is otherwise valid are references checked.
  const r3 = check(`apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: refs}
spec:
  parentRefs: [{kind: Service, name: inventory}]
  rules:
  - backendRefs: [{name: gone, port: 1}]
`);
  assert.deepEqual(r3.errors.map(formatFieldError), ['grpc.yaml#1 spec.rules[0].backendRefs[0]: refers to Service/default/gone, which does not exist']);
});
