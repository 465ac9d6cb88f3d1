import { Type, type Static } from '@sinclair/typebox';
import { defineKind, type Reference, type ValidationContext } from '../descriptor.js';
import { Duration, Enum, GATEWAY_GROUP, HeaderName, ObjectName, PortNumber, SectionName, WEFT_GROUP, validateDuration, validateRegex } from '../gateway/common.js';
import { HTTPHeaderMatch } from '../httproute/httproute.js';
import { parseDuration } from '../../lib/duration.js';

/*
 * A BackendPolicy attaches to a Service (optionally one port, by `port` or by
 * `sectionName` = port name) or to a route (optionally one rule, by `sectionName` =
 * rule name). Each top-level setting (loadBalancer, connectionPool, ...) is taken
 * whole from the most specific policy that sets it; fields left unset inside a
 * setting take the defaults in BACKEND_POLICY_DEFAULTS, not a less specific policy's.
 */

export const TARGET_KINDS = ['Service', 'HTTPRoute', 'GRPCRoute'] as const;
export const LB_TYPES = ['RoundRobin', 'LeastRequest', 'Random', 'RingHash', 'Maglev'] as const;
export const RETRY_ON = [
  '5xx', 'gateway-error', 'reset', 'connect-failure', 'refused-stream', 'retriable-status-codes', 'retriable-4xx',
  'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable',
] as const;
export type RetryOn = (typeof RETRY_ON)[number];

const Count = Type.Integer({ minimum: 1, maximum: 4_294_967_295 });
const Percent = Type.Number({ minimum: 0, maximum: 100 });

export const PolicyTargetRef = Type.Object(
  {
    /** "" or weft.dev for a Service; gateway.networking.k8s.io for routes (the default for them). */
    group: Type.Optional(Type.String({ maxLength: 253 })),
    kind: Enum(TARGET_KINDS),
    name: ObjectName,
    /** A Service port name, or a route rule name. */
    sectionName: Type.Optional(SectionName),
    /** A Service port number. */
    port: Type.Optional(PortNumber),
  },
  { additionalProperties: false },
);
export type PolicyTargetRef = Static<typeof PolicyTargetRef>;

export const LoadBalancer = Type.Object(
  {
    type: Enum(LB_TYPES),
    /** What the hash of RingHash and Maglev is computed from: exactly one. */
    hashOn: Type.Optional(
      Type.Object(
        {
          header: Type.Optional(HeaderName),
          cookie: Type.Optional(Type.Object({ name: HeaderName, ttl: Type.Optional(Duration), path: Type.Optional(Type.String({ maxLength: 1024 })) }, { additionalProperties: false })),
          sourceIP: Type.Optional(Type.Boolean()),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type LoadBalancer = Static<typeof LoadBalancer>;

/** Circuit-breaker limits, per proxy and upstream cluster. */
export const ConnectionPool = Type.Object(
  {
    maxConnections: Type.Optional(Count),
    maxPendingRequests: Type.Optional(Count),
    maxRequests: Type.Optional(Count),
    maxRetries: Type.Optional(Type.Integer({ minimum: 0, maximum: 4_294_967_295 })),
    connectTimeout: Type.Optional(Duration),
    idleTimeout: Type.Optional(Duration),
    maxRequestsPerConnection: Type.Optional(Count),
  },
  { additionalProperties: false },
);
export type ConnectionPool = Static<typeof ConnectionPool>;

export const OutlierDetection = Type.Object(
  {
    consecutive5xx: Type.Optional(Type.Integer({ minimum: 0 })),
    consecutiveGatewayErrors: Type.Optional(Type.Integer({ minimum: 0 })),
    interval: Type.Optional(Duration),
    baseEjectionTime: Type.Optional(Duration),
    maxEjectionPercent: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
    successRate: Type.Optional(
      Type.Object(
        {
          minimumHosts: Type.Optional(Type.Integer({ minimum: 1 })),
          requestVolume: Type.Optional(Type.Integer({ minimum: 1 })),
          /** Hosts whose success rate is below mean - stdevFactor * stdev are ejected (e.g. 1.9). */
          stdevFactor: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 100 })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type OutlierDetection = Static<typeof OutlierDetection>;

export const HealthCheck = Type.Object(
  {
    type: Enum(['http', 'tcp', 'grpc']),
    /** HTTP only; defaults to `/`. */
    path: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
    interval: Type.Optional(Duration),
    timeout: Type.Optional(Duration),
    healthyThreshold: Type.Optional(Type.Integer({ minimum: 1 })),
    unhealthyThreshold: Type.Optional(Type.Integer({ minimum: 1 })),
    /** HTTP only; default: 200-299. */
    expectedStatuses: Type.Optional(Type.Array(Type.Integer({ minimum: 100, maximum: 599 }), { minItems: 1, uniqueItems: true })),
  },
  { additionalProperties: false },
);
export type HealthCheck = Static<typeof HealthCheck>;

export const Retry = Type.Object(
  {
    /** Retries after the first try; 0 disables retries. */
    attempts: Type.Optional(Type.Integer({ minimum: 0, maximum: 10 })),
    perTryTimeout: Type.Optional(Duration),
    retryOn: Type.Optional(Type.Array(Enum(RETRY_ON), { uniqueItems: true })),
    retriableStatusCodes: Type.Optional(Type.Array(Type.Integer({ minimum: 100, maximum: 599 }), { uniqueItems: true })),
    backoff: Type.Optional(Type.Object({ baseInterval: Type.Optional(Duration), maxInterval: Type.Optional(Duration) }, { additionalProperties: false })),
    /** Retries may add at most this percent of active requests (with a floor of minRetryConcurrency). */
    budget: Type.Optional(Type.Object({ percent: Type.Optional(Percent), minRetryConcurrency: Type.Optional(Type.Integer({ minimum: 0 })) }, { additionalProperties: false })),
    /** Retry POST and PATCH too; off by default. */
    retryNonIdempotent: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type Retry = Static<typeof Retry>;

export const Timeouts = Type.Object(
  {
    request: Type.Optional(Duration),
    perTry: Type.Optional(Duration),
    /** Upstream connection idle timeout. */
    idle: Type.Optional(Duration),
    streamIdle: Type.Optional(Duration),
    connect: Type.Optional(Duration),
  },
  { additionalProperties: false },
);
export type Timeouts = Static<typeof Timeouts>;

export const FaultInjection = Type.Object(
  {
    delay: Type.Optional(Type.Object({ fixedDelay: Duration, percent: Type.Number({ minimum: 0, maximum: 100, default: 100 }) }, { additionalProperties: false })),
    abort: Type.Optional(
      Type.Object(
        {
          httpStatus: Type.Optional(Type.Integer({ minimum: 200, maximum: 599 })),
          grpcStatus: Type.Optional(Type.Integer({ minimum: 0, maximum: 16 })),
          percent: Type.Number({ minimum: 0, maximum: 100, default: 100 }),
        },
        { additionalProperties: false },
      ),
    ),
    /** Only requests matching all of these are faulted. */
    headers: Type.Optional(Type.Array(HTTPHeaderMatch, { maxItems: 16 })),
  },
  { additionalProperties: false },
);
export type FaultInjection = Static<typeof FaultInjection>;

export const RATE_LIMIT_SCOPES = ['caller', 'workload'] as const;
export type RateLimitScope = (typeof RATE_LIMIT_SCOPES)[number];

/**
 * A local token bucket: `requests` per `per`, or the bucket spelt out. `scope`
 * says whose bucket: `caller` (default) — each calling proxy keeps one per route,
 * so N callers may together send N times the rate; `workload` — each workload of
 * the target keeps one per Service port in its own sidecar's inbound listener,
 * shared by all its callers (Istio's server-side local rate limit).
 */
export const RateLimit = Type.Object(
  {
    scope: Type.Optional(Enum(RATE_LIMIT_SCOPES)),
    requests: Type.Optional(Count),
    per: Type.Optional(Duration),
    tokensPerFill: Type.Optional(Count),
    fillInterval: Type.Optional(Duration),
    maxTokens: Type.Optional(Count),
  },
  { additionalProperties: false },
);
export type RateLimit = Static<typeof RateLimit>;

export const BackendPolicySpec = Type.Object(
  {
    targetRefs: Type.Array(PolicyTargetRef, { minItems: 1, maxItems: 16 }),
    loadBalancer: Type.Optional(LoadBalancer),
    connectionPool: Type.Optional(ConnectionPool),
    outlierDetection: Type.Optional(OutlierDetection),
    healthCheck: Type.Optional(HealthCheck),
    retry: Type.Optional(Retry),
    timeouts: Type.Optional(Timeouts),
    faultInjection: Type.Optional(FaultInjection),
    rateLimit: Type.Optional(RateLimit),
  },
  { additionalProperties: false },
);
export type BackendPolicySpec = Static<typeof BackendPolicySpec>;

export const BACKEND_POLICY_SETTINGS = ['loadBalancer', 'connectionPool', 'outlierDetection', 'healthCheck', 'retry', 'timeouts', 'faultInjection', 'rateLimit'] as const;

/**
 * What an unset field inside a setting means (Envoy's defaults where Envoy has one).
 * retry.budget.minRetryConcurrency is 5, not Envoy's 3: at low concurrency the
 * floor decides, and 3 slots overflowed when a replica died under CPU starvation
 * (docs/resilience.md "Retry budget floor" has the arithmetic).
 */
export const BACKEND_POLICY_DEFAULTS = {
  connectionPool: { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3, connectTimeout: '5s' },
  outlierDetection: { consecutive5xx: 5, interval: '10s', baseEjectionTime: '30s', maxEjectionPercent: 10 },
  healthCheck: { path: '/', interval: '10s', timeout: '1s', healthyThreshold: 1, unhealthyThreshold: 3 },
  retry: { attempts: 2, retryOn: ['connect-failure', 'reset', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes'], retriableStatusCodes: [503], backoff: { baseInterval: '25ms', maxInterval: '250ms' }, budget: { percent: 20, minRetryConcurrency: 5 } },
  rateLimit: { scope: 'caller' },
} as const;

function validateTarget(t: PolicyTargetRef, at: string, ctx: ValidationContext): void {
  if (t.kind === 'Service') {
    if (t.group !== undefined && t.group !== '' && t.group !== WEFT_GROUP) ctx.error(`${at}.group`, `must be "" or ${WEFT_GROUP} for a Service`);
    if (t.port !== undefined && t.sectionName !== undefined) ctx.error(at, 'name a port by port or by sectionName, not both');
  } else {
    if (t.group !== undefined && t.group !== GATEWAY_GROUP) ctx.error(`${at}.group`, `must be ${GATEWAY_GROUP} for a ${t.kind}`);
    if (t.port !== undefined) ctx.error(`${at}.port`, 'applies to Service targets only; name a route rule with sectionName');
  }
}

function durations(values: Record<string, string | undefined> | undefined, at: string, ctx: ValidationContext): Record<string, number | undefined> {
  const out: Record<string, number | undefined> = {};
  for (const [k, v] of Object.entries(values ?? {})) if (typeof v === 'string') out[k] = validateDuration(v, `${at}.${k}`, ctx);
  return out;
}

function positive(ms: number | undefined, at: string, ctx: ValidationContext): void {
  if (ms === 0) ctx.error(at, 'must be longer than 0s');
}

export function validateBackendPolicy(s: BackendPolicySpec, ctx: ValidationContext): void {
  const seen = new Set<string>();
  s.targetRefs.forEach((t, i) => {
    validateTarget(t, `spec.targetRefs[${i}]`, ctx);
    const k = `${t.kind}/${t.name}/${t.sectionName ?? ''}/${t.port ?? ''}`;
    if (seen.has(k)) ctx.error(`spec.targetRefs[${i}]`, 'is listed twice');
    seen.add(k);
  });
  if (!BACKEND_POLICY_SETTINGS.some((k) => s[k] !== undefined)) ctx.error('spec', `sets nothing: give at least one of ${BACKEND_POLICY_SETTINGS.join(', ')}`);

  if (s.loadBalancer) {
    const h = s.loadBalancer.hashOn;
    if (h) {
      if (s.loadBalancer.type !== 'RingHash' && s.loadBalancer.type !== 'Maglev') ctx.error('spec.loadBalancer.hashOn', 'applies to RingHash and Maglev only');
      const n = [h.header, h.cookie, h.sourceIP === true ? true : undefined].filter((x) => x !== undefined).length;
      if (n !== 1) ctx.error('spec.loadBalancer.hashOn', 'give exactly one of header, cookie or sourceIP: true');
      validateDuration(h.cookie?.ttl, 'spec.loadBalancer.hashOn.cookie.ttl', ctx);
    }
  }

  if (s.connectionPool) {
    const d = durations({ connectTimeout: s.connectionPool.connectTimeout, idleTimeout: s.connectionPool.idleTimeout }, 'spec.connectionPool', ctx);
    positive(d.connectTimeout, 'spec.connectionPool.connectTimeout', ctx);
  }

  if (s.outlierDetection) {
    const o = s.outlierDetection;
    const d = durations({ interval: o.interval, baseEjectionTime: o.baseEjectionTime }, 'spec.outlierDetection', ctx);
    positive(d.interval, 'spec.outlierDetection.interval', ctx);
    positive(d.baseEjectionTime, 'spec.outlierDetection.baseEjectionTime', ctx);
  }

  if (s.healthCheck) {
    const h = s.healthCheck;
    if (h.type !== 'http') {
      if (h.path !== undefined) ctx.error('spec.healthCheck.path', `applies to http checks only, not ${h.type}`);
      if (h.expectedStatuses !== undefined) ctx.error('spec.healthCheck.expectedStatuses', `applies to http checks only, not ${h.type}`);
    } else if (h.path !== undefined && !h.path.startsWith('/')) {
      ctx.error('spec.healthCheck.path', 'must start with "/"');
    }
    const d = durations({ interval: h.interval, timeout: h.timeout }, 'spec.healthCheck', ctx);
    positive(d.interval, 'spec.healthCheck.interval', ctx);
    positive(d.timeout, 'spec.healthCheck.timeout', ctx);
  }

  if (s.retry) {
    const r = s.retry;
    durations({ perTryTimeout: r.perTryTimeout }, 'spec.retry', ctx);
    const b = durations({ baseInterval: r.backoff?.baseInterval, maxInterval: r.backoff?.maxInterval }, 'spec.retry.backoff', ctx);
    positive(b.baseInterval, 'spec.retry.backoff.baseInterval', ctx);
    if (b.baseInterval !== undefined && b.maxInterval !== undefined && b.maxInterval < b.baseInterval) {
      ctx.error('spec.retry.backoff.maxInterval', `must be ≥ baseInterval (${r.backoff?.baseInterval})`);
    }
    if (r.retriableStatusCodes !== undefined && r.retryOn !== undefined && !r.retryOn.includes('retriable-status-codes')) {
      ctx.error('spec.retry.retriableStatusCodes', 'has no effect unless retryOn includes retriable-status-codes');
    }
    if (r.retryOn?.includes('retriable-status-codes') && (r.retriableStatusCodes ?? []).length === 0) {
      ctx.error('spec.retry.retriableStatusCodes', 'is required when retryOn includes retriable-status-codes');
    }
    if (r.perTryTimeout !== undefined && s.timeouts?.perTry !== undefined) ctx.error('spec.timeouts.perTry', 'is also set as retry.perTryTimeout: set it in one place');
  }

  if (s.timeouts) {
    const t = durations(s.timeouts, 'spec.timeouts', ctx);
    const perTry = t.perTry ?? (s.retry?.perTryTimeout !== undefined ? parseDuration(s.retry.perTryTimeout) : undefined);
    if (t.request !== undefined && t.request !== 0 && perTry !== undefined && perTry > t.request) {
      ctx.error(s.timeouts.perTry !== undefined ? 'spec.timeouts.perTry' : 'spec.retry.perTryTimeout', `must not be longer than the request timeout (${s.timeouts.request})`);
    }
    positive(t.connect, 'spec.timeouts.connect', ctx);
    if (s.timeouts.connect !== undefined && s.connectionPool?.connectTimeout !== undefined) ctx.error('spec.timeouts.connect', 'is also set as connectionPool.connectTimeout: set it in one place');
    if (s.timeouts.idle !== undefined && s.connectionPool?.idleTimeout !== undefined) ctx.error('spec.timeouts.idle', 'is also set as connectionPool.idleTimeout: set it in one place');
  }

  if (s.faultInjection) {
    const f = s.faultInjection;
    if (!f.delay && !f.abort) ctx.error('spec.faultInjection', 'give a delay, an abort, or both');
    validateDuration(f.delay?.fixedDelay, 'spec.faultInjection.delay.fixedDelay', ctx);
    if (f.abort && (f.abort.httpStatus === undefined) === (f.abort.grpcStatus === undefined)) ctx.error('spec.faultInjection.abort', 'give exactly one of httpStatus or grpcStatus');
    f.headers?.forEach((h, i) => {
      if (h.type === 'RegularExpression') validateRegex(h.value, `spec.faultInjection.headers[${i}].value`, ctx);
    });
  }

  if (s.rateLimit) {
    const r = s.rateLimit;
    const simple = r.requests !== undefined || r.per !== undefined;
    const bucket = r.tokensPerFill !== undefined || r.fillInterval !== undefined || r.maxTokens !== undefined;
    if (simple && bucket) ctx.error('spec.rateLimit', 'give either requests and per, or tokensPerFill, fillInterval and maxTokens, not both');
    else if (simple) {
      if (r.requests === undefined) ctx.error('spec.rateLimit.requests', 'is required with per');
      if (r.per === undefined) ctx.error('spec.rateLimit.per', 'is required with requests');
    } else if (bucket) {
      if (r.fillInterval === undefined) ctx.error('spec.rateLimit.fillInterval', 'is required with tokensPerFill and maxTokens');
      if (r.maxTokens === undefined) ctx.error('spec.rateLimit.maxTokens', 'is required with tokensPerFill and fillInterval');
      if (r.tokensPerFill !== undefined && r.maxTokens !== undefined && r.tokensPerFill > r.maxTokens) ctx.error('spec.rateLimit.tokensPerFill', 'must be ≤ maxTokens');
    } else ctx.error('spec.rateLimit', 'give requests and per (e.g. 100 per 1s), or tokensPerFill, fillInterval and maxTokens');
    if (r.scope === 'workload') {
      // The target's inbound listener does not know which route or rule the caller matched.
      s.targetRefs.forEach((t, i) => {
        if (t.kind !== 'Service') ctx.error('spec.rateLimit.scope', `workload applies to Service targets only, not targetRefs[${i}] (${t.kind}); use scope: caller for routes`);
      });
    }
    const d = durations({ per: r.per, fillInterval: r.fillInterval }, 'spec.rateLimit', ctx);
    positive(d.per, 'spec.rateLimit.per', ctx);
    positive(d.fillInterval, 'spec.rateLimit.fillInterval', ctx);
  }
}

export function targetReferences(targets: readonly { kind: string; name: string }[], namespace: string, kinds: readonly string[]): Reference[] {
  return targets.flatMap((t, i) => (kinds.includes(t.kind) ? [{ path: `spec.targetRefs[${i}]`, target: { kind: t.kind, namespace, name: t.name } }] : []));
}

export const backendPolicyKind = defineKind<BackendPolicySpec>({
  kind: 'BackendPolicy',
  group: 'weft.dev',
  versions: ['v1alpha1'],
  plural: 'backendpolicies',
  singular: 'backendpolicy',
  shortNames: ['bp'],
  namespaced: true,
  description: 'How clients reach a Service (or a route or rule): load balancing, connection limits, outlier detection, health checks, retries, timeouts, fault injection and local rate limits.',
  specSchema: BackendPolicySpec,
  validate(r, ctx) {
    validateBackendPolicy(r.spec, ctx);
  },
  references(r) {
    return targetReferences(r.spec.targetRefs, r.metadata.namespace ?? '', TARGET_KINDS);
  },
  columns: [
    { header: 'TARGETS', value: (r) => r.spec.targetRefs.map((t) => `${t.kind}/${t.name}${t.port !== undefined ? `:${t.port}` : t.sectionName !== undefined ? `:${t.sectionName}` : ''}`).join(',') },
    { header: 'SETTINGS', value: (r) => BACKEND_POLICY_SETTINGS.filter((k) => r.spec[k] !== undefined).join(',') },
  ],
});
