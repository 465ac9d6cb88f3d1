import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../../../api/types.js';
import type { BackendPolicySpec } from '../../../api/backendpolicy/backendpolicy.js';
import type { ServiceSpec } from '../../../api/service/service.js';
import { effectivePolicyBlocks, routeInputs } from './effective.js';

// Block rules in detail: src/cli/describe-policy.test.ts (weft describe's view of the same code).

const svc: Resource<ServiceSpec> = {
  apiVersion: 'weft.dev/v1alpha1', kind: 'Service', metadata: { name: 'inv', namespace: 'shop' },
  spec: { selector: { app: 'inv' }, ports: [{ name: 'grpc', port: 50051, protocol: 'grpc' }] } as ServiceSpec,
};
const route = (kind: string, name: string, rules: unknown[]): Resource => ({
  apiVersion: 'gateway.networking.k8s.io/v1', kind, metadata: { name, namespace: 'shop' },
  spec: { parentRefs: [{ kind: 'Service', name: 'inv' }], rules },
});
const policy: Resource<BackendPolicySpec> = {
  apiVersion: 'weft.dev/v1alpha1', kind: 'BackendPolicy', metadata: { name: 'slow', namespace: 'shop', creationTimestamp: '2025-01-01T00:00:00Z' },
  spec: { targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'GRPCRoute', name: 'g' }], timeouts: { request: '9s' } },
};

test('routeInputs: HTTPRoutes then GRPCRoutes, other kinds left out', () => {
  const items = [route('GRPCRoute', 'g', [{}]), policy as Resource, route('HTTPRoute', 'h', [{ timeouts: { request: '1s' } }])];
  assert.deepEqual(routeInputs(items).map((r) => `${r.kind}/${r.route.metadata.name}`), ['HTTPRoute/h', 'GRPCRoute/g']);
});

test('a GRPCRoute named by a policy gets its own block; a rule\'s own timeouts win', () => {
  const blocks = effectivePolicyBlocks(svc, [policy], routeInputs([route('GRPCRoute', 'g', [{}]), route('HTTPRoute', 'h', [{ timeouts: { request: '1s' } }])]));
  assert.deepEqual(blocks.map((b) => b.title), ['Port grpc (50051)', 'Port grpc (50051), httproute/shop/h rules[0]', 'Port grpc (50051), grpcroute/shop/g rules[0]']);
  const timeouts = blocks.map((b) => b.lines.find((l) => l.setting === 'timeouts')!);
  assert.deepEqual(timeouts.map((l) => l.source), ['default', 'httproute/shop/h rules[0].timeouts (route field, wins over policies)', 'backendpolicy/shop/slow via targetRefs[0] (Route)']);
  assert.equal(timeouts[0]!.value, undefined);
});
