/**
 * Envoy's local rate limit: a token bucket of max_tokens, refilled with
 * tokens_per_fill every fill_interval (never above max_tokens); one token per
 * request. An empty bucket answers 429 (status.code) with flag RL, `retry-after`
 * and the draft-03 `x-ratelimit-limit/remaining/reset` headers. The route's
 * typed_per_filter_config brings its own bucket (built once per config, shared by
 * every request on that route); the listener-level config limits all routes without
 * one. filter_enabled / filter_enforced pick which requests are looked at / refused.
 */
import type { ProtoJson } from '../../config/types.js';
import type { FilterDeps, FilterFactory, FilterRequest, FilterVerdict, HttpFilter } from '../types.js';
import { hit } from '../fractional-percent.js';
import { compileLocalRateLimit, type LocalRateLimitConfig } from './config.js';

export const LOCAL_RATELIMIT_FILTER_NAME = 'envoy.filters.http.local_ratelimit';

export class TokenBucket {
  private tokens: number;
  private lastFill: number;

  constructor(readonly maxTokens: number, readonly tokensPerFill: number, readonly fillIntervalMs: number, private readonly now: () => number) {
    this.tokens = maxTokens;
    this.lastFill = now();
  }

  private refill(): number {
    const now = this.now();
    const fills = Math.floor((now - this.lastFill) / this.fillIntervalMs);
    if (fills > 0) {
      this.tokens = Math.min(this.maxTokens, this.tokens + fills * this.tokensPerFill);
      this.lastFill += fills * this.fillIntervalMs;
    }
    return now;
  }

  /** Takes a token if there is one. */
  take(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }

  get remaining(): number { this.refill(); return this.tokens; }

  /** Seconds until the next fill (at least 1, as retry-after wants whole seconds). */
  get resetSeconds(): number {
    const now = this.refill();
    return Math.max(1, Math.ceil((this.lastFill + this.fillIntervalMs - now) / 1000));
  }
}

export interface CompiledLocalRateLimit {
  readonly config: LocalRateLimitConfig;
  readonly bucket: TokenBucket | undefined;
  /** Requests refused, and requests that would have been (enabled but not enforced). */
  limited: number;
}

export function compileWithBucket(fields: ProtoJson, path: string, deps: FilterDeps): CompiledLocalRateLimit {
  const config = compileLocalRateLimit(fields, path);
  const b = config.bucket;
  return { config, bucket: b === undefined ? undefined : new TokenBucket(b.maxTokens, b.tokensPerFill, b.fillIntervalMs, deps.now), limited: 0 };
}

export function createLocalRateLimitFilter(base: CompiledLocalRateLimit, deps: FilterDeps): HttpFilter {
  return {
    decodeHeaders(_r: FilterRequest, perRoute: unknown): FilterVerdict {
      const c = (perRoute as CompiledLocalRateLimit | undefined) ?? base;
      const bucket = c.bucket;
      if (bucket === undefined || !hit(c.config.enabled, deps.random)) return undefined;
      if (bucket.take()) return undefined;
      c.limited++;
      if (!hit(c.config.enforced, deps.random)) return undefined;
      const reset = String(bucket.resetSeconds);
      return {
        flag: 'RL',
        status: c.config.status,
        headers: {
          'x-ratelimit-limit': String(bucket.maxTokens),
          'x-ratelimit-remaining': String(bucket.remaining),
          'x-ratelimit-reset': reset,
          'retry-after': reset,
        },
      };
    },
  };
}

export const localRateLimitFactory: FilterFactory = {
  name: LOCAL_RATELIMIT_FILTER_NAME,
  typeName: 'envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit',
  create: (fields: ProtoJson, path: string, deps: FilterDeps) => createLocalRateLimitFilter(compileWithBucket(fields, path, deps), deps),
  compilePerRoute: (fields: ProtoJson, path: string, deps: FilterDeps) => compileWithBucket(fields, path, deps),
};
