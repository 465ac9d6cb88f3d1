import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDocuments } from '../parse.js';
import { validateDocuments } from '../validate.js';
import { formatFieldError } from '../../lib/errors.js';
import type { BackendPolicySpec } from './backendpolicy.js';

const existing = new Set(['Service/default/catalog', 'HTTPRoute/default/catalog']);

function check(yaml: string) {
  const p = parseDocuments(yaml, 'bp.yaml');
  assert.deepEqual(p.errors, []);
  return validateDocuments(p.docs, { exists: (k) => existing.has(`${k.kind}/${k.namespace}/${k.name}`) });
}

const head = (name: string) => `apiVersion: weft.dev/v1alpha1
kind: BackendPolicy
metadata: {name: ${name}}
spec:
`;

test('a BackendPolicy using every setting is accepted', () => {
  const r = check(`${head('full')}  targetRefs:
  - {kind: Service, name: catalog, port: 80}
  - {group: gateway.networking.k8s.io, kind: HTTPRoute, name: catalog, sectionName: split}
  loadBalancer: {type: RingHash, hashOn: {cookie: {name: session, ttl: 1h}}}
  connectionPool: {maxConnections: 100, maxPendingRequests: 10, maxRequests: 1000, maxRetries: 3, connectTimeout: 1s, idleTimeout: 5m, maxRequestsPerConnection: 100}
  outlierDetection:
    consecutive5xx: 5
    consecutiveGatewayErrors: 3
    interval: 10s
    baseEjectionTime: 30s
    maxEjectionPercent: 50
    successRate: {minimumHosts: 3, requestVolume: 100, stdevFactor: 1.9}
  healthCheck: {type: http, path: /healthz, interval: 5s, timeout: 1s, healthyThreshold: 1, unhealthyThreshold: 3, expectedStatuses: [200, 204]}
  retry:
    attempts: 3
    perTryTimeout: 2s
    retryOn: [5xx, retriable-status-codes]
    retriableStatusCodes: [503]
    backoff: {baseInterval: 25ms, maxInterval: 250ms}
    budget: {percent: 20, minRetryConcurrency: 3}
    retryNonIdempotent: false
  timeouts: {request: 10s, streamIdle: 5m}
  faultInjection:
    delay: {fixedDelay: 100ms, percent: 5}
    abort: {httpStatus: 503}
    headers: [{name: x-fault, value: "on"}]
  rateLimit: {requests: 100, per: 1s}
`);
  assert.deepEqual(r.errors.map(formatFieldError), []);
  const s = r.resources[0]?.spec as BackendPolicySpec;
  assert.equal(s.faultInjection?.abort?.percent, 100);
});

test('schema mistakes are reported with their paths', () => {
  const r = check(`${head('bad')}  targetRefs: [{kind: Deployment, name: catalog}]
  loadBalancer: {type: Fastest}
  outlierDetection: {maxEjectionPercent: 101}
  retry: {attempts: 11, retryOn: [5xx, sometimes]}
  faultInjection: {abort: {httpStatus: 600, percent: -1}}
`);
  assert.deepEqual(r.errors.map(formatFieldError).sort(), [
    'bp.yaml#1 spec.faultInjection.abort.httpStatus: must be ≤ 599',
    'bp.yaml#1 spec.faultInjection.abort.percent: must be ≥ 0',
    'bp.yaml#1 spec.loadBalancer.type: must be one of "RoundRobin", "LeastRequest", "Random", "RingHash", "Maglev"',
    'bp.yaml#1 spec.outlierDetection.maxEjectionPercent: must be ≤ 100',
    'bp.yaml#1 spec.retry.attempts: must be ≤ 10',
    'bp.yaml#1 spec.retry.retryOn[1]: must be one of "5xx", "gateway-error", "reset", "connect-failure", "refused-stream", "retriable-status-codes", "retriable-4xx", "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable"',
    'bp.yaml#1 spec.targetRefs[0].kind: must be one of "Service", "HTTPRoute", "GRPCRoute"',
  ]);
});

test('semantic checks: combinations, durations, ranges, references', () => {
  const r = check(`${head('sem')}  targetRefs:
  - {kind: Service, name: catalog, port: 80, sectionName: http}
  - {kind: HTTPRoute, name: catalog, port: 80}
  - {kind: Service, name: gone}
  loadBalancer: {type: RoundRobin, hashOn: {header: x-user, sourceIP: true}}
  connectionPool: {connectTimeout: 0s}
  healthCheck: {type: tcp, path: /healthz}
  retry:
    perTryTimeout: 20s
    retryOn: [retriable-status-codes]
    backoff: {baseInterval: 1s, maxInterval: 100ms}
  timeouts: {request: 10s, connect: 1s}
  faultInjection: {abort: {httpStatus: 503, grpcStatus: 14}}
  rateLimit: {requests: 10, tokensPerFill: 1}
---
${head('empty')}  targetRefs: [{kind: Service, name: catalog}]
---
${head('bucket')}  targetRefs: [{kind: Service, name: catalog}]
  rateLimit: {tokensPerFill: 10, maxTokens: 5}
  faultInjection: {}
`);
  assert.deepEqual(r.errors.map(formatFieldError).sort(), [
    'bp.yaml#1 spec.connectionPool.connectTimeout: must be longer than 0s',
    'bp.yaml#1 spec.faultInjection.abort: give exactly one of httpStatus or grpcStatus',
    'bp.yaml#1 spec.healthCheck.path: applies to http checks only, not tcp',
    'bp.yaml#1 spec.loadBalancer.hashOn: applies to RingHash and Maglev only',
    'bp.yaml#1 spec.loadBalancer.hashOn: give exactly one of header, cookie or sourceIP: true',
    'bp.yaml#1 spec.rateLimit: give either requests and per, or tokensPerFill, fillInterval and maxTokens, not both',
    'bp.yaml#1 spec.retry.backoff.maxInterval: must be ≥ baseInterval (1s)',
    'bp.yaml#1 spec.retry.perTryTimeout: must not be longer than the request timeout (10s)',
    'bp.yaml#1 spec.retry.retriableStatusCodes: is required when retryOn includes retriable-status-codes',
    'bp.yaml#1 spec.targetRefs[0]: name a port by port or by sectionName, not both',
    'bp.yaml#1 spec.targetRefs[1].port: applies to Service targets only; name a route rule with sectionName',
    'bp.yaml#1 spec.timeouts.connect: is also set as connectionPool.connectTimeout: set it in one place',
    'bp.yaml#2 spec: sets nothing: give at least one of loadBalancer, connectionPool, outlierDetection, healthCheck, retry, timeouts, faultInjection, rateLimit',
    'bp.yaml#3 spec.faultInjection: give a delay, an abort, or both',
    'bp.yaml#3 spec.rateLimit.fillInterval: is required with tokensPerFill and maxTokens',
    'bp.yaml#3 spec.rateLimit.tokensPerFill: must be ≤ maxTokens',
  ]);
  const refs = check(`${head('refs')}  targetRefs: [{kind: Service, name: gone}, {kind: GRPCRoute, name: catalog}]
  timeouts: {request: 1s}
`);
  assert.deepEqual(refs.errors.map(formatFieldError), [
    'bp.yaml#1 spec.targetRefs[0]: refers to Service/default/gone, which does not exist',
    'bp.yaml#1 spec.targetRefs[1]: refers to GRPCRoute/default/catalog, which does not exist',
  ]);
});

test('rateLimit.scope: workload is accepted on Service targets and refused on route targets', () => {
  const ok = check(`${head('per-workload')}  targetRefs: [{kind: Service, name: catalog}, {kind: Service, name: catalog, port: 80}]
  rateLimit: {scope: workload, requests: 10, per: 1s}
`);
  assert.deepEqual(ok.errors.map(formatFieldError), []);
  assert.equal((ok.resources[0]?.spec as BackendPolicySpec).rateLimit?.scope, 'workload');
  const bad = check(`${head('per-workload-route')}  targetRefs: [{kind: Service, name: catalog}, {kind: HTTPRoute, name: catalog, sectionName: search}]
  rateLimit: {scope: workload, requests: 10, per: 1s}
---
${head('bad-scope')}  targetRefs: [{kind: Service, name: catalog}]
  rateLimit: {scope: mesh, requests: 10, per: 1s}
`);
  const errors = bad.errors.map(formatFieldError);
  assert.ok(errors.includes('bp.yaml#1 spec.rateLimit.scope: workload applies to Service targets only, not targetRefs[1] (HTTPRoute); use scope: caller for routes'), errors.join('\n'));
  assert.ok(errors.some((e) => e.startsWith('bp.yaml#2 spec.rateLimit.scope')), errors.join('\n'));
  assert.equal(errors.length, 2, errors.join('\n'));
});
