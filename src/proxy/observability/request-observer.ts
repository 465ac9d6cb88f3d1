/**
 * What the HTTP connection manager (http/forward.ts) records per request, in one
 * place: the Istio-style metrics, the access log entry (file sinks and the
 * `onAccessLog` callback), and the request's span. forward.ts calls
 * `observeRequest` when a request arrives and `finish` once when it ends; the rest
 * stays out of the request path.
 *
 * Body bytes are counted by wrapping `res.write`/`res.end` (every response path —
 * upstream bodies, local replies, direct responses — goes through them) and, for
 * forwarded requests, by a 'data' listener once the body is already flowing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CompiledListener, HeaderMutation, HttpConnectionManagerConfig } from '../config/types.js';
import type { ClusterRuntime } from '../upstream/cluster/cluster-manager.js';
import type { AccessLogEntry } from '../http/forward.js';
import type { ResponseFlag } from '../local-reply.js';
import type { ProxyStats } from '../stats.js';
import { downstreamConnectionOf, requestSocket, spiffeIdOfSan } from '../tls/downstream-connection.js';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { writeAccessLogs } from './access-log.js';
import { incomingTraceId, startRequestTrace, type RequestTrace } from './tracing.js';

const localPrincipals = new WeakMap<object, string | null>();

/**
 * The SPIFFE ID of the certificate this proxy presented on a TLS downstream
 * connection (Envoy's DOWNSTREAM_LOCAL_URI_SAN), once per socket.
 */
export function localPrincipalOf(socket: Socket): string | undefined {
  const hit = localPrincipals.get(socket);
  if (hit !== undefined) return hit ?? undefined;
  const t = socket as Partial<TLSSocket>;
  let p: string | undefined;
  if (t.encrypted === true) {
    const cert = t.getCertificate?.();
    p = cert !== null && cert !== undefined && 'subjectaltname' in cert ? spiffeIdOfSan(cert.subjectaltname) : undefined;
  }
  localPrincipals.set(socket, p ?? null);
  return p;
}

/** Headers a continued trace replaces on the upstream request. */
const TRACE_HEADERS = ['traceparent', 'tracestate', 'b3', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled', 'x-b3-flags'];

export function isInboundListener(l: CompiledListener | undefined): boolean {
  if (l === undefined) return false;
  return l.direction === 'INBOUND' || ((l.direction === undefined || l.direction === 'UNSPECIFIED') && l.name === 'inbound');
}

export interface RequestEnd {
  readonly startTime: number;
  readonly durationMs: number;
  readonly status: number;
  readonly flag: ResponseFlag | undefined;
  readonly routeName: string | undefined;
  readonly cluster: string | undefined;
  readonly upstreamHost: string | undefined;
  readonly requestId: string;
  readonly method: string;
  readonly authority: string;
  readonly path: string;
  /** Outbound: the upstream's SPIFFE ID when the cluster is mTLS (expectedPeerOf). */
  readonly upstreamPrincipal: string | undefined;
}

export interface RequestObservation {
  /** Upstream header changes carrying the trace (undefined: not traced). */
  readonly traceMutation: HeaderMutation | undefined;
  /** Starts counting request body bytes; call once the body is piped upstream. */
  countRequestBody(): void;
  finish(e: RequestEnd, onAccessLog: ((e: AccessLogEntry) => void) | undefined): void;
}

function grpcStatusValue(v: unknown): string | undefined {
  const s = Array.isArray(v) ? String(v[0]) : v === undefined ? undefined : String(v);
  // Bounded: gRPC codes are 0..16; anything else is not a status.
  return s !== undefined && /^\d{1,2}$/.test(s) ? s : undefined;
}

/** grpc-status from a header list as writeHead takes it (raw array or object). */
function grpcStatusIn(headers: unknown): string | undefined {
  if (Array.isArray(headers)) {
    for (let i = 0; i < headers.length; i += 2) if (String(headers[i]).toLowerCase() === 'grpc-status') return grpcStatusValue(headers[i + 1]);
    return undefined;
  }
  if (typeof headers === 'object' && headers !== null) {
    for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === 'grpc-status') return grpcStatusValue(v);
  }
  return undefined;
}

function chunkBytes(chunk: unknown): number {
  if (typeof chunk === 'string') return Buffer.byteLength(chunk);
  if (chunk instanceof Uint8Array) return chunk.byteLength;
  return 0;
}

/**
 * The SPIFFE ID an mTLS cluster requires of its upstream (one exact SAN matcher, as
 * the control plane emits), used as destination_principal: the handshake verified it.
 */
export function expectedPeerOf(c: ClusterRuntime | undefined): string | undefined {
  const m = c?.config.tls?.sanMatchers;
  return m !== undefined && m.length === 1 && m[0]!.kind === 'exact' ? m[0]!.value : undefined;
}

/** `hcm`: the HTTP connection manager of the filter chain the connection matched. */
/** The downstream TLS facts of a request, read while it is live (requestSocket: HTTP/2's session socket). */
interface Downstream { readonly tls: boolean; readonly peer: string | undefined; readonly local: string | undefined }
const PLAIN: Downstream = Object.freeze({ tls: false, peer: undefined, local: undefined });

function downstreamOf(req: IncomingMessage): Downstream {
  const sock = requestSocket(req);
  const c = downstreamConnectionOf(sock);
  return c.tls ? { tls: true, peer: c.peerPrincipal, local: localPrincipalOf(sock) } : PLAIN;
}

export function observeRequest(listener: CompiledListener | undefined, hcm: HttpConnectionManagerConfig | undefined, req: IncomingMessage, res: ServerResponse, stats: ProxyStats, requestId: string, grpc: boolean, target: { authority: string; path: string } | undefined): RequestObservation {
  const inbound = isInboundListener(listener);
  // Only the inbound side's labels depend on the downstream connection.
  const down = inbound ? downstreamOf(req) : PLAIN;
  // Read now: an HTTP/2 stream's socket view stops resolving once the stream closes.
  const remote = req.socket.remoteAddress ?? '';
  let trace: RequestTrace | undefined;
  if (hcm?.tracing !== undefined) {
    trace = startRequestTrace(hcm.tracing, {
      inbound,
      method: req.method ?? 'GET',
      authority: target?.authority ?? '',
      path: target?.path ?? req.url ?? '',
      protocol: req.httpVersionMajor === 2 ? '2' : '1.1',
      headers: req.headers,
      clientAddress: req.socket.remoteAddress ?? '',
      requestId,
      selfService: stats.labels.self.service,
    });
  }
  let sent = 0;
  let received = 0;
  let counting = false;
  let grpcStatus: string | undefined;
  // Wrap the instance's write/end (not the prototype): counts every response byte path.
  const r = res as unknown as { write: (...a: unknown[]) => boolean; end: (...a: unknown[]) => unknown; writeHead: (...a: unknown[]) => unknown; addTrailers: (t: unknown) => void };
  const write = r.write;
  const end = r.end;
  r.write = function (this: unknown, ...a: unknown[]) { sent += chunkBytes(a[0]); return write.apply(this, a); };
  r.end = function (this: unknown, ...a: unknown[]) { if (typeof a[0] !== 'function') sent += chunkBytes(a[0]); return end.apply(this, a); };
  if (grpc) {
    const writeHead = r.writeHead;
    const addTrailers = r.addTrailers;
    r.writeHead = function (this: unknown, ...a: unknown[]) { grpcStatus = grpcStatusIn(a[a.length - 1]) ?? grpcStatus; return writeHead.apply(this, a); };
    r.addTrailers = function (this: unknown, t: unknown) { grpcStatus = grpcStatusIn(t) ?? grpcStatus; addTrailers.call(this, t); };
    // A trailers-only reply (upstream error, local reply) goes out in one HEADERS frame through the h2 stream.
    const stream = (res as unknown as { stream?: { respond: (...a: unknown[]) => unknown } }).stream;
    if (stream !== undefined) {
      const respond = stream.respond;
      stream.respond = function (this: unknown, ...a: unknown[]) { grpcStatus = grpcStatusIn(a[0]) ?? grpcStatus; return respond.apply(this, a); };
    }
  }
  const onData = (c: Buffer): void => { received += c.length; };
  return {
    traceMutation: trace === undefined
      ? undefined
      : { remove: TRACE_HEADERS, add: trace.headers.map(([name, value]) => ({ name, value, action: 'OVERWRITE_IF_EXISTS_OR_ADD' as const, keepEmptyValue: false })) },
    countRequestBody() {
      if (counting) return;
      counting = true;
      req.on('data', onData);
    },
    finish(e, onAccessLog) {
      if (counting) req.off('data', onData);
      else {
        // Not forwarded (local reply, direct response): the declared body size is what the client sent.
        const cl = Number(req.headers['content-length']);
        if (Number.isFinite(cl) && cl > 0) received = cl;
      }
      trace?.end(e);
      complete(inbound, down, hcm, req, stats, e, onAccessLog, { received, sent, grpcStatus: grpc ? grpcStatus : undefined, traceId: trace?.traceId, remote });
    },
  };
}

/** A WebSocket (Upgrade) request's end: metrics and access logs; no span, bytes not counted. */
export function recordUpgrade(listener: CompiledListener | undefined, hcm: HttpConnectionManagerConfig | undefined, req: IncomingMessage, stats: ProxyStats, e: RequestEnd, onAccessLog: ((e: AccessLogEntry) => void) | undefined): void {
  const inbound = isInboundListener(listener);
  complete(inbound, inbound ? downstreamOf(req) : PLAIN, hcm, req, stats, e, onAccessLog, { received: 0, sent: 0, grpcStatus: undefined, traceId: undefined, remote: req.socket.remoteAddress ?? '' });
}

function complete(inbound: boolean, down: Downstream, hcm: HttpConnectionManagerConfig | undefined, req: IncomingMessage, stats: ProxyStats, e: RequestEnd, onAccessLog: ((e: AccessLogEntry) => void) | undefined, x: { received: number; sent: number; grpcStatus: string | undefined; traceId: string | undefined; remote: string }): void {
  const peer = inbound ? down.peer : e.upstreamPrincipal;
  const local = down.local;
  stats.recordHttp({ inbound, peerPrincipal: peer, tls: down.tls, cluster: e.cluster, localPrincipal: local }, e.status, e.flag, x.grpcStatus, e.durationMs, x.received, x.sent);
  const logs = hcm?.accessLogs;
  if (onAccessLog === undefined && (logs === undefined || logs.length === 0)) return;
  const self = local ?? stats.labels.principal;
  const xff = req.headers['x-forwarded-for'];
  const remote = x.remote;
  const { upstreamPrincipal: _u, ...base } = e;
  const entry: AccessLogEntry = {
    ...base,
    protocol: req.httpVersionMajor === 2 ? 'HTTP/2' : `HTTP/${req.httpVersion}`,
    bytesReceived: x.received,
    bytesSent: x.sent,
    userAgent: req.headers['user-agent'],
    // As sent upstream: the caller's chain plus its address.
    xForwardedFor: xff === undefined || xff === '' ? remote : `${xff}, ${remote}`,
    traceId: x.traceId ?? incomingTraceId(req.headers),
    inbound,
    sourcePrincipal: inbound ? peer : self,
    destinationPrincipal: inbound ? self : peer,
    downstreamAddress: remote,
    requestHeaders: req.headers,
  };
  onAccessLog?.(entry);
  if (logs !== undefined && logs.length > 0) stats.accessLogDropped += writeAccessLogs(logs, entry);
}
