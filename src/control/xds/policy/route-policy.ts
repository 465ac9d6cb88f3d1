import { BACKEND_POLICY_DEFAULTS, type FaultInjection, type LoadBalancer, type RateLimit, type Retry, type RetryOn, type Timeouts } from '../../../api/backendpolicy/backendpolicy.js';
import { parseDuration } from '../../../lib/duration.js';
import { TYPE_PREFIX } from '../../../xds/type-urls.js';
import { protoDuration } from '../model.js';
import type { EffectiveSettings } from './attach.js';

/**
 * Request settings of a BackendPolicy → fields of an Envoy v3 Route.
 *
 * | Weft                        | Envoy Route                                                          |
 * |-----------------------------|----------------------------------------------------------------------|
 * | retry                       | route.retry_policy (retry_on, num_retries, per_try_timeout, retry_back_off, retriable_status_codes) |
 * | retry.retryNonIdempotent    | false (default): retriable_request_headers `:method` not POST/PATCH (HTTP ports only) |
 * | timeouts.request            | route.timeout; gRPC: route.max_stream_duration (what gRPC honours)   |
 * | timeouts.perTry             | retry_policy.per_try_timeout                                         |
 * | timeouts.streamIdle         | route.idle_timeout                                                   |
 * | loadBalancer.hashOn (of the backend cluster) | route.hash_policy (header, cookie, connection_properties.source_ip) |
 * | faultInjection              | typed_per_filter_config[envoy.filters.http.fault] HTTPFault          |
 * | rateLimit (scope caller)    | typed_per_filter_config[envoy.filters.http.local_ratelimit] LocalRateLimit |
 *
 * rateLimit with scope workload goes to the target's inbound listener instead,
 * and timeouts.streamIdle there as well: see inbound-policy.ts.
 *
 * The HTTPRoute's own `retry` and `timeouts` (Gateway API) win over a policy's:
 * they are the route author's explicit choice for that rule.
 *
 * `grpc` flavour (what proxyless gRPC runs, gRFC A44/A42/A33): retry_on keeps
 * only the gRPC status conditions (none left, or 0 attempts: no retry policy,
 * gRPC NACKs num_retries 0); no per-try timeout, no retriable_status_codes;
 * hash_policy header only; fault injection as Envoy; no rate limit (gRPC has no
 * local_ratelimit filter and NACKs an unknown typed_per_filter_config).
 *
 * Not translated: retry_host_predicate previous_hosts ("retry on another
 * host"): its extension proto is not among the types src/xds/protos.ts loads,
 * so its Any could not be encoded. Retry budgets live on the Cluster
 * (circuit_breakers thresholds retry_budget), see cluster-policy.ts.
 */

type Obj = Record<string, unknown>;
export type RouteFlavour = 'envoy' | 'grpc';

export const FAULT_FILTER = 'envoy.filters.http.fault';
export const FAULT_TYPE = `${TYPE_PREFIX}envoy.extensions.filters.http.fault.v3.HTTPFault`;
export const RATE_LIMIT_FILTER = 'envoy.filters.http.local_ratelimit';
export const RATE_LIMIT_TYPE = `${TYPE_PREFIX}envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit`;

const GRPC_RETRY_ON: ReadonlySet<RetryOn> = new Set(['cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable']);

function ms(d: string | undefined): number | undefined {
  return d === undefined ? undefined : parseDuration(d);
}

function dur(d: string | undefined): Obj | undefined {
  const v = ms(d);
  return v === undefined ? undefined : protoDuration(v);
}

/** A percentage as FractionalPercent: HUNDRED when whole, MILLION otherwise (0.1% = 1000/1e6). */
export function fractionalPercent(percent: number): Obj {
  if (Number.isInteger(percent)) return { numerator: percent, denominator: 'HUNDRED' };
  return { numerator: Math.round(percent * 10_000), denominator: 'MILLION' };
}

export function retryPolicy(r: Retry, timeouts: Timeouts | undefined, flavour: RouteFlavour, protocol: string): Obj | undefined {
  const d = BACKEND_POLICY_DEFAULTS.retry;
  const attempts = r.attempts ?? d.attempts;
  let on: readonly RetryOn[] = r.retryOn ?? d.retryOn;
  if (flavour === 'grpc') on = on.filter((c) => GRPC_RETRY_ON.has(c));
  if (attempts === 0 || on.length === 0) return undefined;
  const base = r.backoff?.baseInterval ?? d.backoff.baseInterval;
  const max = r.backoff?.maxInterval ?? ((ms(d.backoff.maxInterval) ?? 0) >= (ms(base) ?? 0) ? d.backoff.maxInterval : undefined);
  const rp: Obj = { retry_on: on.join(','), num_retries: { value: attempts } };
  const backoff: Obj = { base_interval: dur(base) };
  if (max !== undefined) backoff.max_interval = dur(max);
  rp.retry_back_off = backoff;
  if (flavour === 'grpc') return rp;
  const perTry = r.perTryTimeout ?? timeouts?.perTry;
  if (perTry !== undefined && (ms(perTry) ?? 0) > 0) rp.per_try_timeout = dur(perTry);
  if (on.includes('retriable-status-codes')) rp.retriable_status_codes = [...(r.retriableStatusCodes ?? d.retriableStatusCodes)];
  if (r.retryNonIdempotent !== true && protocol !== 'grpc') {
    rp.retriable_request_headers = [{ name: ':method', string_match: { safe_regex: { google_re2: {}, regex: 'POST|PATCH' } }, invert_match: true }];
  }
  return rp;
}

export function hashPolicies(lb: LoadBalancer | undefined, flavour: RouteFlavour): Obj[] {
  if (lb === undefined || (lb.type !== 'RingHash' && lb.type !== 'Maglev') || lb.hashOn === undefined) return [];
  const h = lb.hashOn;
  if (h.header !== undefined) return [{ header: { header_name: h.header.toLowerCase() } }];
  if (flavour === 'grpc') return [];
  if (h.cookie !== undefined) {
    const c: Obj = { name: h.cookie.name };
    const ttl = ms(h.cookie.ttl);
    if (ttl !== undefined) c.ttl = protoDuration(ttl);
    if (h.cookie.path !== undefined) c.path = h.cookie.path;
    return [{ cookie: c }];
  }
  if (h.sourceIP === true) return [{ connection_properties: { source_ip: true } }];
  return [];
}

export function httpFault(f: FaultInjection): Obj {
  const out: Obj = { '@type': FAULT_TYPE };
  if (f.delay !== undefined) out.delay = { fixed_delay: dur(f.delay.fixedDelay), percentage: fractionalPercent(f.delay.percent) };
  if (f.abort !== undefined) {
    const a: Obj = { percentage: fractionalPercent(f.abort.percent) };
    if (f.abort.grpcStatus !== undefined) a.grpc_status = f.abort.grpcStatus;
    else if (f.abort.httpStatus !== undefined) a.http_status = f.abort.httpStatus;
    out.abort = a;
  }
  if ((f.headers?.length ?? 0) > 0) {
    out.headers = (f.headers ?? []).map((h) => ({
      name: h.name.toLowerCase(),
      string_match: h.type === 'RegularExpression' ? { safe_regex: { google_re2: {}, regex: h.value } } : { exact: h.value },
    }));
  }
  return out;
}

/** A full bucket: `requests` per `per`, or the bucket spelt out. */
export function localRateLimit(r: RateLimit): Obj {
  const simple = r.requests !== undefined;
  const maxTokens = simple ? r.requests : r.maxTokens;
  const perFill = simple ? r.requests : (r.tokensPerFill ?? r.maxTokens);
  const interval = simple ? r.per : r.fillInterval;
  const always = { default_value: { numerator: 100, denominator: 'HUNDRED' }, runtime_key: 'weft.local_rate_limit' };
  return {
    '@type': RATE_LIMIT_TYPE,
    stat_prefix: 'weft_local_rate_limit',
    token_bucket: { max_tokens: maxTokens, tokens_per_fill: { value: perFill }, fill_interval: dur(interval) },
    filter_enabled: always,
    filter_enforced: always,
  };
}

/** The listener-level filter: present so per-route configs run, with no bucket of its own (it limits nothing). */
export function localRateLimitFilter(): Obj {
  return { name: RATE_LIMIT_FILTER, typed_config: { '@type': RATE_LIMIT_TYPE, stat_prefix: 'weft_local_rate_limit' } };
}

/** The listener-level fault filter: no fault of its own; routes switch it on. */
export function faultFilter(): Obj {
  return { name: FAULT_FILTER, typed_config: { '@type': FAULT_TYPE } };
}

export interface RoutePolicyContext {
  flavour: RouteFlavour;
  /** Protocol of the Service port the request is addressed to. */
  protocol: string;
  /** Load balancer of a backend cluster (for its hash policy). */
  lbOf: (cluster: string) => LoadBalancer | undefined;
}

function clustersOf(action: Obj): string[] {
  if (typeof action.cluster === 'string') return [action.cluster];
  const wc = action.weighted_clusters as { clusters?: { name: string }[] } | undefined;
  return (wc?.clusters ?? []).map((c) => c.name);
}

/** Applies request settings to one Route (only routes that forward: redirects and direct responses are left alone). */
export function applyRoutePolicy(route: Obj, s: EffectiveSettings, ctx: RoutePolicyContext): void {
  const action = route.route as Obj | undefined;
  if (action === undefined) return;
  const existing = action.retry_policy as Obj | undefined;
  if (s.retry !== undefined && existing?.retry_on === undefined) {
    const rp = retryPolicy(s.retry, s.timeouts, ctx.flavour, ctx.protocol);
    if (rp !== undefined) action.retry_policy = { ...rp, ...(existing ?? {}) };
  } else if (s.retry === undefined && s.timeouts?.perTry !== undefined && ctx.flavour === 'envoy' && existing?.per_try_timeout === undefined) {
    const perTry = ms(s.timeouts.perTry);
    if (perTry !== undefined && perTry > 0) action.retry_policy = { ...(existing ?? {}), per_try_timeout: protoDuration(perTry) };
  }
  const t = s.timeouts;
  if (t?.request !== undefined && action.timeout === undefined) {
    const total = ms(t.request);
    if (total !== undefined) {
      action.timeout = protoDuration(total);
      if (ctx.flavour === 'grpc') action.max_stream_duration = { max_stream_duration: protoDuration(total) };
    }
  }
  if (t?.streamIdle !== undefined && ctx.flavour === 'envoy') action.idle_timeout = dur(t.streamIdle);
  const hashes: Obj[] = [];
  const seen = new Set<string>();
  for (const c of clustersOf(action)) {
    for (const h of hashPolicies(ctx.lbOf(c), ctx.flavour)) {
      const k = JSON.stringify(h);
      if (!seen.has(k)) hashes.push(h);
      seen.add(k);
    }
  }
  if (hashes.length > 0) action.hash_policy = hashes;
  const perFilter: Obj = { ...((route.typed_per_filter_config as Obj | undefined) ?? {}) };
  if (s.faultInjection !== undefined) perFilter[FAULT_FILTER] = httpFault(s.faultInjection);
  // scope workload: the target's inbound listener holds the bucket (inbound-policy.ts), not the caller.
  if (s.rateLimit !== undefined && s.rateLimit.scope !== 'workload' && ctx.flavour === 'envoy') perFilter[RATE_LIMIT_FILTER] = localRateLimit(s.rateLimit);
  if (Object.keys(perFilter).length > 0) route.typed_per_filter_config = perFilter;
}

/** Which per-route filters a RouteConfiguration uses (the listener must then carry them). */
export function filtersUsed(routeConfig: Obj): { fault: boolean; rateLimit: boolean } {
  let fault = false;
  let rateLimit = false;
  for (const vh of (routeConfig.virtual_hosts as Obj[] | undefined) ?? []) {
    for (const r of (vh.routes as Obj[] | undefined) ?? []) {
      const pf = r.typed_per_filter_config as Obj | undefined;
      if (pf?.[FAULT_FILTER] !== undefined) fault = true;
      if (pf?.[RATE_LIMIT_FILTER] !== undefined) rateLimit = true;
    }
  }
  return { fault, rateLimit };
}
