/**
 * The one place where a failure becomes a response. Every error path in the proxy
 * ends here with an Envoy response flag; the flag goes to the access log and the
 * request counter, and (a Weft choice; Envoy sends none) to the client in
 * `x-weft-response-flags` on locally generated replies, so a curl user can tell a
 * proxy 503 from an application 503.
 */
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export type ResponseFlag =
  | 'NR' // no route
  | 'NC' // route names a cluster that does not exist
  | 'UH' // no healthy upstream
  | 'UF' // upstream connect failure
  | 'UC' // upstream connection terminated before a response
  | 'UT' // upstream request timeout
  | 'SI' // stream idle timeout (route idle_timeout)
  | 'DT' // stream duration timeout (route max_stream_duration, grpc-timeout under grpc_timeout_header_max)
  | 'UO' // circuit breaker overflow (requests, pending requests, or retries)
  | 'URX' // upstream retry limit exceeded
  | 'RL' // rate limited locally (local_ratelimit filter)
  | 'FI' // fault injected (fault filter abort)
  | 'DC' // downstream closed before the response was complete
  | 'DPE' // downstream protocol error
  | 'UPG' // upgrade refused: type not in upgrade_configs, or the route does not forward (Weft's name)
  | 'RQH' // request headers too large / too many (Weft's name; Envoy counts these as DPE)
  | 'RBAC' // denied by an RBAC filter (Envoy's RBAC_ACCESS_DENIED)
  | 'JWT'; // refused by jwt_authn: token missing or invalid (Weft's name; Envoy sets no flag, only details jwt_authn_access_denied)

interface Reply { status: number; body: string }

const REPLIES: Record<ResponseFlag, Reply> = {
  NR: { status: 404, body: 'route not found' },
  NC: { status: 503, body: 'cluster not found' },
  UH: { status: 503, body: 'no healthy upstream' },
  UF: { status: 503, body: 'upstream connect error or disconnect/reset before headers. reset reason: connection failure' },
  UC: { status: 503, body: 'upstream connect error or disconnect/reset before headers. reset reason: connection termination' },
  UT: { status: 504, body: 'upstream request timeout' },
  SI: { status: 408, body: 'stream timeout' },
  DT: { status: 408, body: 'downstream duration timeout' },
  UO: { status: 503, body: 'upstream connect error or disconnect/reset before headers. reset reason: overflow' },
  URX: { status: 503, body: 'upstream connect error or disconnect/reset before headers. retried and the latest reset reason: connection failure' },
  RL: { status: 429, body: 'local_rate_limited' },
  FI: { status: 503, body: 'fault filter abort' },
  DC: { status: 0, body: '' },
  DPE: { status: 400, body: 'bad request' },
  RQH: { status: 431, body: 'request header fields too large' },
  UPG: { status: 403, body: 'upgrade failed' },
  RBAC: { status: 403, body: 'RBAC: access denied' },
  JWT: { status: 401, body: 'Jwt verification fails' },
};

/**
 * gRPC status for a local reply to a gRPC request. The flags the brief of issue 4 names
 * come first (UT → DEADLINE_EXCEEDED; Envoy itself maps its 504 to UNAVAILABLE); the
 * rest follow Envoy's Grpc::Utility::httpToGrpcStatus on the HTTP status.
 */
export function grpcStatusFor(flag: ResponseFlag, status: number): number {
  switch (flag) {
    case 'UH': case 'UF': case 'UC': case 'UO': case 'URX': case 'NC': return 14; // UNAVAILABLE
    case 'UT': case 'DT': return 4; // DEADLINE_EXCEEDED
    case 'RL': return 14; // Envoy's local rate limit answers UNAVAILABLE to gRPC
    case 'NR': return 12; // UNIMPLEMENTED
    default: break;
  }
  switch (status) {
    case 400: return 13; // INTERNAL
    case 401: return 16; // UNAUTHENTICATED
    case 403: return 7; // PERMISSION_DENIED
    case 404: return 12;
    case 429: case 502: case 503: case 504: return 14;
    default: return 2; // UNKNOWN
  }
}

/** A request whose content-type says gRPC gets gRPC-shaped local replies. */
export function isGrpcRequest(contentType: string | string[] | undefined): boolean {
  return typeof contentType === 'string' && /^application\/grpc(?:[+;]|$)/i.test(contentType);
}

/** grpc-message is percent-encoded (gRPC over HTTP/2 spec). */
function grpcMessage(s: string): string {
  return s.replace(/[^\x20-\x24\x26-\x7e]/g, (c) => [...Buffer.from(c)].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''));
}

/** The HTTP/2 stream under a compat response, when the downstream speaks HTTP/2. */
interface H2Respondable { respond(headers: Record<string, string | number>, opts: { endStream: boolean }): void; headersSent: boolean; destroyed: boolean }

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
export function sendLocalReply(res: ServerResponse, flag: ResponseFlag, opts: { status?: number | undefined; requestId?: string; grpc?: boolean; grpcStatus?: number | undefined; headers?: Readonly<Record<string, string>> | undefined } = {}): number {
  const stream = (res as unknown as { stream?: H2Respondable }).stream;
  if (flag === 'DC' || res.destroyed === true || stream?.destroyed === true) return 0;
  if (res.headersSent) {
    res.destroy();
    return 0;
  }
  const status = statusFor(flag, opts.status);
  const body = REPLIES[flag].body;
  if (opts.grpc === true) {
    // Trailers-only gRPC response: HTTP 200, the status in grpc-status (Envoy's shape).
    const h: Record<string, string> = {
      ...opts.headers,
      'content-type': 'application/grpc', 'grpc-status': String(opts.grpcStatus ?? grpcStatusFor(flag, status)), 'grpc-message': grpcMessage(body),
      [RESPONSE_FLAGS_HEADER]: flag,
    };
    if (opts.requestId !== undefined) h['x-request-id'] = opts.requestId;
    if (stream !== undefined) {
      stream.respond({ ':status': 200, ...h }, { endStream: true });
      return 200;
    }
    res.writeHead(200, { ...h, 'content-length': '0' });
    res.end();
    return 200;
  }
  const headers: string[] = ['content-type', 'text/plain', 'content-length', String(Buffer.byteLength(body)), RESPONSE_FLAGS_HEADER, flag];
  for (const [k, v] of Object.entries(opts.headers ?? {})) headers.push(k, v);
  if (opts.requestId !== undefined) headers.push('x-request-id', opts.requestId);
  res.writeHead(status, headers);
  res.end(body);
  return status;
}

/**
 * The local reply on a raw HTTP/1.1 socket (Upgrade requests, where node:http has
 * handed the socket over). Closes the connection after it. Returns the status.
 */
export function sendRawLocalReply(socket: Socket, flag: ResponseFlag, opts: { status?: number; requestId?: string } = {}): number {
  if (flag === 'DC' || socket.destroyed) return 0;
  const status = statusFor(flag, opts.status);
  const body = REPLIES[flag].body;
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${RESPONSE_FLAGS_HEADER}: ${flag}\r\n`;
  if (opts.requestId !== undefined) head += `x-request-id: ${opts.requestId}\r\n`;
  socket.end(`${head}connection: close\r\n\r\n${body}`);
  return status;
}
