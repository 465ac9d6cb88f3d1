/**
 * One request's retry state under a route's retry_policy (Envoy semantics):
 * - retry_on decides which attempt outcomes are retriable (see `retriable`);
 * - num_retries bounds the retries; per_try_timeout bounds each attempt;
 * - back-off between attempts is exponential with full jitter: a random wait in
 *   [0, (2^n − 1) × base), capped at max (Envoy's JitteredExponentialBackOff);
 * - a retry prefers a host not tried yet (Envoy's previous_hosts predicate, always on);
 * - retriable_request_headers must all match the request (the control plane uses them
 *   to keep POST/PATCH from being retried unless the policy says so);
 * - a request body is buffered up to the route's buffer limit so an attempt can be
 *   replayed; a larger body streams through and the request is not retried;
 * - the cluster's retry circuit breaker (retry_budget, else max_retries) caps retries
 *   in flight across requests, so a failing backend cannot become a retry storm.
 * When a retriable outcome cannot be retried the last upstream response goes to the
 * client as is, flagged URX (retries exhausted) or UO (retry overflow) in the access
 * log; a last failure without a response becomes a local URX reply.
 *
 * forward.ts owns the attempts; it reports each attempt's end here (`schedule`) and
 * relaunches when told to.
 */
import type { IncomingMessage } from 'node:http';
import type { Writable } from 'node:stream';
import type { RetryOn, RetryPolicy } from '../../config/types.js';
import { headerMatches } from '../../router/route-table.js';
import { retryLimit } from '../circuit/circuit-breaker.js';
import type { ClusterHost, ClusterRuntime } from '../cluster/cluster-manager.js';
import type { AttemptOutcome } from './outcome.js';

const GRPC_CODES: Partial<Record<RetryOn, number>> = {
  cancelled: 1, 'deadline-exceeded': 4, 'resource-exhausted': 8, internal: 13, unavailable: 14,
};

/** Whether retry_on covers this outcome. */
export function retriable(on: ReadonlySet<RetryOn>, codes: ReadonlySet<number>, o: AttemptOutcome): boolean {
  const anyReset = on.has('5xx') || on.has('gateway-error') || on.has('reset');
  switch (o.kind) {
    case 'connect-failure': return anyReset || on.has('connect-failure') || on.has('reset-before-request');
    case 'refused-stream': return anyReset || on.has('refused-stream') || on.has('reset-before-request');
    case 'reset': case 'per-try-timeout': return anyReset;
    case 'timeout': return false;
    case 'response': {
      const s = o.status;
      if (on.has('5xx') && s >= 500 && s <= 599) return true;
      if (on.has('gateway-error') && (s === 502 || s === 503 || s === 504)) return true;
      if (on.has('retriable-4xx') && s === 409) return true;
      if (on.has('retriable-status-codes') && codes.has(s)) return true;
      if (o.grpcStatus !== undefined) {
        for (const c of on) if (GRPC_CODES[c] === o.grpcStatus) return true;
      }
      return false;
    }
  }
}

/** Replays the buffered request body to each attempt, then streams the rest live. */
class ReplayBody {
  private chunks: Buffer[] = [];
  private size = 0;
  private ended = false;
  private sink: Writable | undefined;
  replayable = true;

  constructor(private readonly req: IncomingMessage, private readonly limit: number) {
    req.on('data', (c: Buffer) => {
      if (this.replayable) {
        this.size += c.length;
        if (this.size > this.limit) { this.replayable = false; this.chunks = []; } else this.chunks.push(c);
      }
      const s = this.sink;
      if (s !== undefined && !s.destroyed && !s.write(c)) {
        req.pause();
        s.once('drain', () => { if (this.sink === s) req.resume(); });
      }
    });
    req.on('end', () => { this.ended = true; const s = this.sink; if (s !== undefined && !s.destroyed) s.end(); });
  }

  sendTo(sink: Writable): void {
    this.sink = sink;
    for (const c of this.chunks) sink.write(c);
    if (this.ended) sink.end();
    else if (this.req.isPaused()) this.req.resume();
  }
}

export interface RetryOptions {
  readonly random?: () => number;
}

export class RetryState {
  private retries = 0;
  private readonly tried = new Set<string>();
  private readonly eligible: boolean;
  private readonly body: ReplayBody | undefined;
  private backoff: NodeJS.Timeout | undefined;
  private perTry: NodeJS.Timeout | undefined;
  /** This request holds one slot of the cluster's retry gauge. */
  private holding = false;
  private closed = false;
  private readonly random: () => number;
  /** Set when a retriable outcome could not be retried: the access-log flag. */
  passThrough: 'URX' | 'UO' | undefined;

  constructor(readonly policy: RetryPolicy, private readonly cluster: ClusterRuntime, req: IncomingMessage, bodyless: boolean, bufferLimit: number, opts: RetryOptions = {}) {
    this.random = opts.random ?? Math.random;
    let ok = policy.on.size > 0 && policy.numRetries > 0;
    if (ok && policy.retriableRequestHeaders.length > 0) {
      const headers = { ...req.headers, ':method': req.method ?? 'GET' };
      ok = policy.retriableRequestHeaders.every((m) => headerMatches(m, headers));
    }
    this.eligible = ok;
    this.body = bodyless ? undefined : new ReplayBody(req, ok ? bufferLimit : 0);
  }

  /** The request body for an attempt (buffered part first). */
  sendBody(sink: Writable): void {
    this.body?.sendTo(sink);
  }

  /** Arms per_try_timeout for the attempt about to start. */
  armPerTry(onTimeout: () => void): void {
    if (this.perTry !== undefined) clearTimeout(this.perTry);
    this.perTry = undefined;
    if (this.policy.perTryTimeoutMs > 0 && !this.closed) this.perTry = setTimeout(onTimeout, this.policy.perTryTimeoutMs);
  }

  private clearPerTry(): void {
    if (this.perTry !== undefined) clearTimeout(this.perTry);
    this.perTry = undefined;
  }

  private releaseSlot(): void {
    if (this.holding) { this.holding = false; this.cluster.resilience.retriesActive--; }
  }

  /**
   * An attempt on `host` ended with `o`. Returns true when a retry is scheduled
   * (`relaunch` runs after the back-off with the next host); false when the outcome
   * stands (then `passThrough` says why a retriable one was not retried).
   */
  schedule(o: AttemptOutcome, host: ClusterHost, relaunch: (next: ClusterHost) => void): boolean {
    this.tried.add(host.key);
    this.releaseSlot();
    // After response headers the per-try timer keeps running until the response ends (Envoy).
    if (o.kind !== 'response') this.clearPerTry();
    if (this.closed || !retriable(this.policy.on, this.policy.retriableStatusCodes, o)) return false;
    if (!this.eligible || (this.body !== undefined && !this.body.replayable)) return false;
    if (this.retries >= this.policy.numRetries) { this.passThrough = 'URX'; return false; }
    const r = this.cluster.resilience;
    if (r.retriesActive >= retryLimit(this.cluster)) {
      this.cluster.stats.upstreamRqRetryOverflow++;
      this.passThrough = 'UO';
      return false;
    }
    this.retries++;
    r.retriesActive++;
    this.cluster.stats.upstreamRqRetry++;
    this.holding = true;
    this.clearPerTry();
    const ceiling = Math.min((2 ** this.retries - 1) * this.policy.backoffBaseMs, this.policy.backoffMaxMs);
    const wait = Math.floor(this.random() * ceiling);
    this.backoff = setTimeout(() => {
      this.backoff = undefined;
      if (this.closed) return;
      relaunch(this.pickHost(host));
    }, wait);
    return true;
  }

  /** True while waiting out the back-off before the next attempt. */
  get backingOff(): boolean { return this.backoff !== undefined; }

  /** Retries made so far. */
  get count(): number { return this.retries; }

  private pickHost(last: ClusterHost): ClusterHost {
    let fallback: ClusterHost | undefined;
    for (let i = 0; i < this.policy.hostSelectionMaxAttempts; i++) {
      const h = this.cluster.lb.pick({ hash: undefined }) as ClusterHost | undefined;
      if (h === undefined) break;
      if (!this.tried.has(h.key)) return h;
      fallback ??= h;
    }
    // Every pick was a host already tried: take another untried one if the set has it.
    const untried = this.cluster.lb.current().find((h) => !this.tried.has(h.key));
    return untried ?? fallback ?? last;
  }

  /** The request is over: timers and the retry slot are released. */
  done(): void {
    this.closed = true;
    if (this.backoff !== undefined) clearTimeout(this.backoff);
    if (this.perTry !== undefined) clearTimeout(this.perTry);
    this.releaseSlot();
  }
}

export function createRetryState(policy: RetryPolicy, cluster: ClusterRuntime, req: IncomingMessage, bodyless: boolean, bufferLimit: number, opts?: RetryOptions): RetryState {
  return new RetryState(policy, cluster, req, bodyless, bufferLimit, opts);
}
