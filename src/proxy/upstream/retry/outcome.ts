/** What one upstream attempt ended with, as the retry policy and outlier detection see it. */
export type AttemptOutcome =
  | { readonly kind: 'response'; readonly status: number; readonly grpcStatus: number | undefined }
  /** The TCP connection (or connect timeout) failed: nothing reached the upstream. */
  | { readonly kind: 'connect-failure' }
  /** Connected, then reset or closed before response headers. */
  | { readonly kind: 'reset' }
  /** HTTP/2 REFUSED_STREAM: the upstream did not process the request. */
  | { readonly kind: 'refused-stream' }
  /** retry_policy.per_try_timeout fired before the response headers. */
  | { readonly kind: 'per-try-timeout' }
  /** The route timeout fired while the attempt waited for its response (never retried). */
  | { readonly kind: 'timeout' };

/** grpc-status from a header block (trailers-only replies carry it in the headers). */
export function grpcStatusOf(v: string | string[] | undefined): number | undefined {
  if (typeof v !== 'string' || !/^\d+$/.test(v)) return undefined;
  return Number(v);
}
