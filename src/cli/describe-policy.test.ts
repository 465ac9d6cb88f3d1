import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../api/types.js';
import type { BackendPolicySpec } from '../api/backendpolicy/backendpolicy.js';
import type { ServiceSpec } from '../api/service/service.js';
import { effectivePolicyBlocks, formatEffectiveBlocks } from './describe-policy.js';

const svc: Resource<ServiceSpec> = {
  apiVersion: 'weft.dev/v1alpha1',
  kind: 'Service',
  metadata: { name: 'catalog', namespace: 'shop' },
  spec: { selector: { app: 'catalog' }, ports: [{ name: 'http', port: 80, protocol: 'http' }, { name: 'admin', port: 9000, protocol: 'http' }] } as ServiceSpec,
};

function bp(name: string, created: string, spec: Omit<BackendPolicySpec, 'targetRefs'>, targetRefs: BackendPolicySpec['targetRefs']): Resource<BackendPolicySpec> {
  return { apiVersion: 'weft.dev/v1alpha1', kind: 'BackendPolicy', metadata: { name, namespace: 'shop', creationTimestamp: created }, spec: { targetRefs, ...spec } };
}

const policies = [
  bp('svc', '2025-01-01T00:00:00Z', { retry: { attempts: 4 }, connectionPool: { maxRequests: 10 } }, [{ kind: 'Service', name: 'catalog' }]),
  bp('admin-port', '2025-01-02T00:00:00Z', { retry: { attempts: 0 } }, [{ kind: 'Service', name: 'other' }, { kind: 'Service', name: 'catalog', sectionName: 'admin' }]),
  bp('rule', '2025-01-03T00:00:00Z', { faultInjection: { abort: { httpStatus: 503, percent: 10 } } }, [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: 'r', sectionName: 'canary' }]),
  bp('elsewhere', '2025-01-01T00:00:00Z', { rateLimit: { requests: 1 } }, [{ kind: 'Service', name: 'catalog' }]),
];
policies[3]!.metadata.namespace = 'other'; // policies target their own namespace only

const route = {
  kind: 'HTTPRoute' as const,
  route: {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: 'r', namespace: 'shop' },
    spec: { parentRefs: [{ kind: 'Service', name: 'catalog', port: 80 }], rules: [{ name: 'stable' }, { name: 'canary' }, { timeouts: { request: '2s' } }] },
  },
};

test('effective policy: per port, most specific wins, defaults fill unset fields, sources named', () => {
  const blocks = effectivePolicyBlocks(svc, policies, [route]);
  assert.deepEqual(blocks.map((b) => b.title), [
    'Port http (80)',
    'Port http (80), httproute/shop/r rules[1] (canary)',
    'Port http (80), httproute/shop/r rules[2]',
    'Port admin (9000)',
  ]);
  const line = (b: number, s: string): { value: unknown; source: string } => blocks[b]!.lines.find((l) => l.setting === s)!;
  assert.deepEqual(line(0, 'connectionPool'), {
    setting: 'connectionPool',
    value: { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 10, maxRetries: 3, connectTimeout: '5s' },
    source: 'backendpolicy/shop/svc via targetRefs[0] (Service)',
  });
  assert.equal((line(0, 'retry').value as { attempts: number }).attempts, 4);
  assert.deepEqual(line(0, 'rateLimit'), { setting: 'rateLimit', value: undefined, source: 'default' });
  assert.equal(line(1, 'faultInjection').source, 'backendpolicy/shop/rule via targetRefs[0] (RouteRule)');
  assert.equal(line(1, 'retry').source, 'backendpolicy/shop/svc via targetRefs[0] (Service)');
  assert.deepEqual(line(2, 'timeouts'), { setting: 'timeouts', value: { request: '2s' }, source: 'httproute/shop/r rules[2].timeouts (route field, wins over policies)' });
  assert.equal(line(3, 'retry').source, 'backendpolicy/shop/admin-port via targetRefs[1] (ServicePort)');
  assert.equal((line(3, 'retry').value as { attempts: number }).attempts, 0);
  const text = formatEffectiveBlocks(blocks);
  assert.match(text, /^Port http \(80\):\n {2}loadBalancer: {5}<unset> {2}from default\n/);
  assert.match(text, /\n {2}faultInjection: {3}\{"abort":\{"httpStatus":503,"percent":10\}\} {2}from backendpolicy\/shop\/rule via targetRefs\[0\] \(RouteRule\)\n/);
});
