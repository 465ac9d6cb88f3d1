/** envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit → LocalRateLimitConfig. */
import { durationMs, fail, num, obj, optObj, str } from '../../config/proto-values.js';
import type { ProtoJson } from '../../config/types.js';
import { runtimeFractionalPercent } from '../fractional-percent.js';

export interface LocalRateLimitConfig {
  readonly statPrefix: string;
  /** undefined: no bucket, nothing is limited (the control plane's listener-level entry). */
  readonly bucket?: { readonly maxTokens: number; readonly tokensPerFill: number; readonly fillIntervalMs: number } | undefined;
  /** Share of requests the filter looks at, and of those it enforces (the rest are only counted). */
  readonly enabled: number;
  readonly enforced: number;
  readonly status: number;
}

export function compileLocalRateLimit(f: ProtoJson, path: string): LocalRateLimitConfig {
  for (const k of ['descriptors', 'request_headers_to_add_when_not_enforced', 'response_headers_to_add', 'vh_rate_limits', 'rate_limits', 'stage']) {
    const v = f[k];
    if (v !== undefined && v !== 0 && !(Array.isArray(v) && v.length === 0)) fail(`${path}.${k}`, 'not supported yet');
  }
  if (f.local_rate_limit_per_downstream_connection === true) fail(`${path}.local_rate_limit_per_downstream_connection`, 'not supported yet');
  const statPrefix = str(f.stat_prefix, `${path}.stat_prefix`);
  let bucket: LocalRateLimitConfig['bucket'];
  const tb = optObj(f.token_bucket, `${path}.token_bucket`);
  if (tb !== undefined) {
    const maxTokens = num(tb.max_tokens, `${path}.token_bucket.max_tokens`, 0);
    if (!Number.isInteger(maxTokens) || maxTokens < 1) fail(`${path}.token_bucket.max_tokens`, 'must be an integer ≥ 1');
    const tokensPerFill = num(tb.tokens_per_fill, `${path}.token_bucket.tokens_per_fill`, 1);
    const fillIntervalMs = durationMs(tb.fill_interval, `${path}.token_bucket.fill_interval`, 0);
    // Envoy refuses fill intervals under 50 ms.
    if (fillIntervalMs < 50) fail(`${path}.token_bucket.fill_interval`, 'must be ≥ 50ms');
    bucket = { maxTokens, tokensPerFill, fillIntervalMs };
  }
  const st = optObj(f.status, `${path}.status`);
  const status = st === undefined ? 429 : num(obj(st, `${path}.status`).code, `${path}.status.code`, 429);
  if (status < 400 || status >= 600) fail(`${path}.status.code`, 'must be a 4xx or 5xx');
  return Object.freeze({
    statPrefix,
    bucket,
    // Envoy: both default to 0% (the filter does nothing unless switched on).
    enabled: runtimeFractionalPercent(f.filter_enabled, `${path}.filter_enabled`, 0),
    enforced: runtimeFractionalPercent(f.filter_enforced, `${path}.filter_enforced`, 0),
    status,
  });
}
