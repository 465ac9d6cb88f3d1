import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../../api/types.js';
import type { BackendPolicySpec } from '../../api/backendpolicy/backendpolicy.js';
import { resolveBackendPolicy, type PolicyTarget } from './policy/attach.js';

function bp(name: string, spec: Partial<BackendPolicySpec> & Pick<BackendPolicySpec, 'targetRefs'>, created?: string, namespace = 'default'): Resource<BackendPolicySpec> {
  return {
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'BackendPolicy',
    metadata: { name, namespace, ...(created !== undefined ? { creationTimestamp: created } : {}) },
    spec: spec as BackendPolicySpec,
  };
}

const svcTarget: PolicyTarget = { service: { namespace: 'default', name: 'catalog', port: 80, portName: 'http' } };
const ruleTarget: PolicyTarget = { ...svcTarget, route: { kind: 'HTTPRoute', namespace: 'default', name: 'catalog', ruleName: 'canary' } };

test('most specific target wins per setting: rule > route > service port > service', () => {
  const policies = [
    bp('svc', { targetRefs: [{ kind: 'Service', name: 'catalog' }], retry: { attempts: 1 }, timeouts: { request: '1s' }, loadBalancer: { type: 'Random' } }, '2024-01-01T00:00:00Z'),
    bp('port', { targetRefs: [{ kind: 'Service', name: 'catalog', port: 80 }], retry: { attempts: 2 }, timeouts: { request: '2s' } }, '2024-01-02T00:00:00Z'),
    bp('route', { targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: 'catalog' }], retry: { attempts: 3 } }, '2024-01-03T00:00:00Z'),
    bp('rule', { targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: 'catalog', sectionName: 'canary' }], retry: { attempts: 4 } }, '2024-01-04T00:00:00Z'),
  ];
  const e = resolveBackendPolicy(policies, ruleTarget);
  assert.deepEqual(e.settings.retry, { attempts: 4 });
  assert.deepEqual(e.settings.timeouts, { request: '2s' });
  assert.deepEqual(e.settings.loadBalancer, { type: 'Random' });
  assert.deepEqual(e.sources.retry, { policy: { namespace: 'default', name: 'rule' }, targetRef: 0, specificity: 'RouteRule' });
  assert.equal(e.sources.timeouts?.specificity, 'ServicePort');
  assert.equal(e.sources.loadBalancer?.policy.name, 'svc');
  // The same policies seen from the Service port alone (no route).
  const s = resolveBackendPolicy([...policies].reverse(), svcTarget);
  assert.deepEqual(s.settings.retry, { attempts: 2 });
  assert.equal(s.sources.retry?.policy.name, 'port');
  // Another rule of the route gets the route-wide one.
  const other = resolveBackendPolicy(policies, { ...svcTarget, route: { kind: 'HTTPRoute', namespace: 'default', name: 'catalog', ruleName: 'main' } });
  assert.deepEqual(other.settings.retry, { attempts: 3 });
  assert.equal(other.sources.retry?.specificity, 'Route');
});

test('a setting is taken whole: unset fields are not filled from a less specific policy', () => {
  const e = resolveBackendPolicy(
    [
      bp('a', { targetRefs: [{ kind: 'Service', name: 'catalog' }], connectionPool: { maxConnections: 10, maxRequests: 20 } }),
      bp('b', { targetRefs: [{ kind: 'Service', name: 'catalog', sectionName: 'http' }], connectionPool: { maxRequests: 5 } }),
    ],
    svcTarget,
  );
  assert.deepEqual(e.settings.connectionPool, { maxRequests: 5 });
  assert.equal(e.sources.connectionPool?.specificity, 'ServicePort');
});

test('among equals: oldest creationTimestamp, then name; unstored (no timestamp) counts as newest', () => {
  const older = bp('zz', { targetRefs: [{ kind: 'Service', name: 'catalog' }], retry: { attempts: 1 } }, '2024-01-01T00:00:00Z');
  const newer = bp('aa', { targetRefs: [{ kind: 'Service', name: 'catalog' }], retry: { attempts: 2 } }, '2024-06-01T00:00:00Z');
  const unstored = bp('a0', { targetRefs: [{ kind: 'Service', name: 'catalog' }], retry: { attempts: 3 } });
  assert.equal(resolveBackendPolicy([newer, unstored, older], svcTarget).sources.retry?.policy.name, 'zz');
  assert.equal(resolveBackendPolicy([unstored, newer], svcTarget).sources.retry?.policy.name, 'aa');
  const same1 = bp('b', { targetRefs: [{ kind: 'Service', name: 'catalog' }], retry: { attempts: 1 } }, '2024-01-01T00:00:00Z');
  const same2 = bp('a', { targetRefs: [{ kind: 'Service', name: 'catalog' }], retry: { attempts: 2 } }, '2024-01-01T00:00:00Z');
  assert.equal(resolveBackendPolicy([same1, same2], svcTarget).sources.retry?.policy.name, 'a');
});

test('targets that do not apply: other port, other namespace, other rule, other kind, route target without a route', () => {
  const policies = [
    bp('port81', { targetRefs: [{ kind: 'Service', name: 'catalog', port: 81 }], retry: { attempts: 1 } }),
    bp('grpc-port', { targetRefs: [{ kind: 'Service', name: 'catalog', sectionName: 'grpc' }], retry: { attempts: 1 } }),
    bp('elsewhere', { targetRefs: [{ kind: 'Service', name: 'catalog' }], retry: { attempts: 1 } }, undefined, 'shop'),
    bp('rule2', { targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: 'catalog', sectionName: 'other' }], retry: { attempts: 1 } }),
    bp('grpcroute', { targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'GRPCRoute', name: 'catalog' }], retry: { attempts: 1 } }),
  ];
  assert.deepEqual(resolveBackendPolicy(policies, ruleTarget), { settings: {}, sources: {} });
  assert.deepEqual(resolveBackendPolicy(policies, svcTarget), { settings: {}, sources: {} });
});

test('a policy with several targetRefs counts with its most specific match', () => {
  const p = bp('multi', { targetRefs: [{ kind: 'Service', name: 'catalog' }, { kind: 'Service', name: 'catalog', port: 80 }], retry: { attempts: 1 } }, '2024-02-01T00:00:00Z');
  const q = bp('svc-old', { targetRefs: [{ kind: 'Service', name: 'catalog' }], retry: { attempts: 2 } }, '2024-01-01T00:00:00Z');
  const e = resolveBackendPolicy([q, p], svcTarget);
  assert.deepEqual(e.sources.retry, { policy: { namespace: 'default', name: 'multi' }, targetRef: 1, specificity: 'ServicePort' });
});
