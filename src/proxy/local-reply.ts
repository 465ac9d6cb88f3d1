/**
 * The one place where a failure becomes a response. Every error path in the proxy
 * ends here with an Envoy response flag; the flag goes to the access log and the
 * request counter, and (a Weft choice; Envoy sends none) to the client in
 * `x-weft-response-flags` on locally generated replies, so a curl user can tell a
 * proxy 503 from an application 503.
 */
import type { ServerResponse } from 'node:http';

export type ResponseFlag =
  | 'NR' // no route
  | 'NC' // route names a cluster that does not exist
  | 'UH' // no healthy upstream
  | 'UF' // upstream connect failure
  | 'UC' // upstream connection terminated before a response
  | 'UT' // upstream request timeout
  | 'UO' // circuit breaker overflow
  | 'DC' // downstream closed before the response was complete
  | 'DPE'; // downstream protocol error

interface Reply { status: number; body: string }

const REPLIES: Record<ResponseFlag, Reply> = {
  NR: { status: 404, body: 'route not found' },
  NC: { status: 503, body: 'cluster not found' },
  UH: { status: 503, body: 'no healthy upstream' },
  UF: { status: 503, body: 'upstream connect error or disconnect/reset before headers. reset reason: connection failure' },
  UC: { status: 503, body: 'upstream connect error or disconnect/reset before headers. reset reason: connection termination' },
  UT: { status: 504, body: 'upstream request timeout' },
  UO: { status: 503, body: 'upstream connect error or disconnect/reset before headers. reset reason: overflow' },
  DC: { status: 0, body: '' },
  DPE: { status: 400, body: 'bad request' },
};

export const RESPONSE_FLAGS_HEADER = 'x-weft-response-flags';

/** Status a flag maps to (0 = no response is sent). */
export function statusFor(flag: ResponseFlag, override?: number): number {
  return override ?? REPLIES[flag].status;
}

/**
 * Writes the local reply for `flag` unless the response has already started (then the
 * downstream stream is reset, which is all HTTP/1.1 allows). Returns the status sent
 * (0 if none).
 */
export function sendLocalReply(res: ServerResponse, flag: ResponseFlag, opts: { status?: number; requestId?: string } = {}): number {
  if (flag === 'DC' || res.destroyed) return 0;
  if (res.headersSent) {
    res.destroy();
    return 0;
  }
  const status = statusFor(flag, opts.status);
  const body = REPLIES[flag].body;
  const headers: string[] = ['content-type', 'text/plain', 'content-length', String(Buffer.byteLength(body)), RESPONSE_FLAGS_HEADER, flag];
  if (opts.requestId !== undefined) headers.push('x-request-id', opts.requestId);
  res.writeHead(status, headers);
  res.end(body);
  return status;
}
