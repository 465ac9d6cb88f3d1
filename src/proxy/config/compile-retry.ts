/**
 * RetryPolicy (route or virtual host) → RetryPolicy. Envoy's defaults: num_retries 1,
 * back-off base 25 ms and max 10 × base. Extensions Weft cannot honour are refused so a
 * control plane never believes a policy is in force when it is not.
 */
import { compileHeaderMatcher } from './compile-route.js';
import { arr, durationMs, fail, num, obj, str, typedConfig } from './proto-values.js';
import type { RetryOn, RetryPolicy } from './types.js';

const RETRY_ON: readonly RetryOn[] = [
  '5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'refused-stream',
  'retriable-4xx', 'retriable-status-codes', 'envoy-ratelimited',
  'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable',
];
const PREVIOUS_HOSTS = 'envoy.retry_host_predicates.previous_hosts';
const PREVIOUS_HOSTS_TYPE = 'envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate';

export function compileRetryPolicy(v: unknown, path: string): RetryPolicy | undefined {
  const r = obj(v, path);
  for (const k of ['retry_priority', 'rate_limited_retry_back_off', 'retriable_headers', 'retry_options_predicates']) {
    if (r[k] !== undefined && !(Array.isArray(r[k]) && (r[k] as unknown[]).length === 0)) fail(`${path}.${k}`, 'not supported yet');
  }
  const on = new Set<RetryOn>();
  const rawOn = r.retry_on === undefined ? '' : str(r.retry_on, `${path}.retry_on`);
  for (const part of rawOn.split(',')) {
    const c = part.trim();
    if (c === '') continue;
    if (!(RETRY_ON as readonly string[]).includes(c)) fail(`${path}.retry_on`, `unknown or unsupported retry condition "${c}"`);
    on.add(c as RetryOn);
  }
  arr(r.retry_host_predicate, `${path}.retry_host_predicate`).forEach((p, i) => {
    const pp = `${path}.retry_host_predicate[${i}]`;
    const o = obj(p, pp);
    const type = o.typed_config === undefined ? undefined : typedConfig(o.typed_config, `${pp}.typed_config`).type;
    // Weft always prefers a host not tried yet, which is what previous_hosts asks for.
    if (type !== PREVIOUS_HOSTS_TYPE && o.name !== PREVIOUS_HOSTS) fail(pp, 'only the previous_hosts predicate is supported');
  });
  const numRetries = num(r.num_retries, `${path}.num_retries`, 1);
  if (!Number.isInteger(numRetries) || numRetries < 0) fail(`${path}.num_retries`, 'must be an integer ≥ 0');
  const bo = obj(r.retry_back_off ?? {}, `${path}.retry_back_off`);
  const backoffBaseMs = durationMs(bo.base_interval, `${path}.retry_back_off.base_interval`, 25);
  if (r.retry_back_off !== undefined && backoffBaseMs <= 0) fail(`${path}.retry_back_off.base_interval`, 'must be > 0');
  const backoffMaxMs = durationMs(bo.max_interval, `${path}.retry_back_off.max_interval`, backoffBaseMs * 10);
  if (backoffMaxMs < backoffBaseMs) fail(`${path}.retry_back_off.max_interval`, 'must be ≥ base_interval');
  const codes = new Set<number>();
  arr(r.retriable_status_codes, `${path}.retriable_status_codes`).forEach((c, i) => {
    const n = num(c, `${path}.retriable_status_codes[${i}]`, 0);
    if (!Number.isInteger(n) || n < 100 || n > 599) fail(`${path}.retriable_status_codes[${i}]`, 'must be an HTTP status');
    codes.add(n);
  });
  const hsa = num(r.host_selection_retry_max_attempts, `${path}.host_selection_retry_max_attempts`, 0);
  if (on.size === 0 && r.per_try_timeout === undefined) return undefined;
  return Object.freeze({
    on,
    numRetries,
    perTryTimeoutMs: durationMs(r.per_try_timeout, `${path}.per_try_timeout`, 0),
    backoffBaseMs,
    backoffMaxMs,
    retriableStatusCodes: codes,
    retriableRequestHeaders: arr(r.retriable_request_headers, `${path}.retriable_request_headers`).map((h, i) => compileHeaderMatcher(h, `${path}.retriable_request_headers[${i}]`)),
    // At least a few picks so a retry lands on another host whenever there is one.
    hostSelectionMaxAttempts: Math.max(3, hsa),
  });
}
