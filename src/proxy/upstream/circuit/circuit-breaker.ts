/**
 * Envoy's per-cluster circuit breakers (default priority) at request admission:
 * max_requests (requests in flight) and max_pending_requests (requests waiting for a
 * connection because max_connections are all busy). max_connections itself is the
 * pool's socket cap; max_retries and the retry budget are checked when a retry is
 * scheduled (upstream/retry/retry-loop.ts). An overflow is a 503 with flag UO.
 */
import type { ClusterRuntime } from '../cluster/cluster-manager.js';

/** Requests queued in the HTTP/1.1 pool for want of a free connection. */
export function pendingRequests(c: ClusterRuntime): number {
  let n = 0;
  const queues = c.pool.agent.requests;
  for (const k in queues) n += queues[k]?.length ?? 0;
  return n;
}

function socketsInUse(c: ClusterRuntime): number {
  let n = 0;
  const s = c.pool.agent.sockets;
  for (const k in s) n += s[k]?.length ?? 0;
  return n;
}

/** True when the request may go upstream; counts the overflow otherwise. */
export function admitRequest(c: ClusterRuntime): boolean {
  const cfg = c.config;
  let ok = c.stats.upstreamRqActive < cfg.maxRequests;
  // Only HTTP/1.1 requests queue for a connection; an h2 session multiplexes them.
  // (Cheap guard first: nothing can be pending while fewer requests than connections are in flight.)
  if (ok && cfg.protocol === 'http1' && c.stats.upstreamRqActive >= cfg.maxConnections && socketsInUse(c) >= cfg.maxConnections && pendingRequests(c) >= cfg.maxPendingRequests) ok = false;
  if (!ok) {
    c.stats.upstreamRqOverflow++;
  }
  return ok;
}

/** Concurrent retries the cluster allows now (retry budget, else max_retries). */
export function retryLimit(c: ClusterRuntime): number {
  const b = c.config.retryBudget;
  if (b === undefined) return c.config.maxRetries;
  const active = c.stats.upstreamRqActive + (c.config.protocol === 'http1' ? pendingRequests(c) : 0);
  return Math.max(b.minRetryConcurrency, Math.floor((b.budgetPercent / 100) * active));
}
