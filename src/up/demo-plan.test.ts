import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAllDocuments } from 'yaml';
import { demoWorkloads, withPorts } from './demo-plan.js';

const YAML = `apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: catalog}
spec:
  ports: [{name: http, port: 80, targetPort: 8081}]
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: catalog-v1}
spec:
  ports: [{name: http, port: 80, targetPort: 8081}]
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: other}
spec:
  ports: [{name: http, port: 80, targetPort: 7000}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: catalog}
spec: {parentRefs: [{name: catalog}]}
`;

test('withPorts sets the planned targetPorts (catalog follows catalog-v1) and leaves the rest alone', () => {
  const out = parseAllDocuments(withPorts(YAML, { 'catalog-v1': 41001, web: 41002 })).map((d) => d.toJS() as { kind: string; metadata: { name: string }; spec: { ports?: { targetPort: number }[] } });
  assert.deepEqual(out.map((o) => [o.kind, o.metadata.name, o.spec.ports?.[0]?.targetPort]), [
    ['Service', 'catalog', 41001],
    ['Service', 'catalog-v1', 41001],
    ['Service', 'other', 7000],
    ['HTTPRoute', 'catalog', undefined],
  ]);
});

test('two catalog-v2 instances (one flaky) where a second loopback address exists, one flaky instance where not', () => {
  const ports = { web: 1, 'catalog-v1': 2, 'catalog-v2': 3, inventory: 4, ledger: 5 };
  const two = demoWorkloads(ports, '127.0.0.2');
  assert.deepEqual(two.map((w) => `${w.name}@${w.address}:${w.port}`), [
    'inventory@127.0.0.1:4', 'ledger@127.0.0.1:5', 'catalog-v1@127.0.0.1:2', 'catalog-v2-a@127.0.0.1:3', 'catalog-v2-b@127.0.0.2:3', 'web@127.0.0.1:1',
  ]);
  assert.equal(two.filter((w) => w.env.CATALOG_FAIL_RATE !== undefined).length, 1);
  const one = demoWorkloads(ports, undefined);
  assert.deepEqual(one.filter((w) => w.service === 'catalog-v2').map((w) => w.env.CATALOG_FAIL_RATE), ['0.3']);
  assert.equal(one.at(-1)?.name, 'web', 'web starts last: what it calls is there');
});
