/**
 * What filters (RBAC, JWT) and telemetry learn about a downstream connection: the
 * peer's address, whether it is TLS, and the SPIFFE ID of a verified client
 * certificate. Computed once per socket (a WeakMap), not per request: parsing the
 * peer certificate is the expensive part and it cannot change on a live connection.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { DownstreamConnection } from '../filters/types.js';

const cache = new WeakMap<object, DownstreamConnection>();

/** The first `URI:spiffe://…` entry of an X.509 subjectAltName string (node's format). */
export function spiffeIdOfSan(san: string | undefined): string | undefined {
  if (san === undefined) return undefined;
  for (const part of san.split(', ')) {
    if (part.startsWith('URI:spiffe://')) return part.slice(4);
  }
  return undefined;
}

/**
 * `socket` may be node:http2's compatibility proxy for the session socket; property
 * reads and method calls go through to the real TLSSocket, so it works for both.
 */
export function downstreamConnectionOf(socket: Socket): DownstreamConnection {
  const hit = cache.get(socket);
  if (hit !== undefined) return hit;
  const tlsSocket = socket as Partial<TLSSocket>;
  const tls = tlsSocket.encrypted === true;
  let peerPrincipal: string | undefined;
  let serverName: string | undefined;
  if (tls) {
    // Only a certificate the TLS layer verified counts as an identity.
    if (tlsSocket.authorized === true) peerPrincipal = spiffeIdOfSan(tlsSocket.getPeerCertificate?.()?.subjectaltname);
    const sn = (tlsSocket as { servername?: unknown }).servername;
    if (typeof sn === 'string') serverName = sn;
  }
  const c: DownstreamConnection = {
    remoteAddress: socket.remoteAddress ?? '',
    remotePort: socket.remotePort ?? 0,
    localAddress: socket.localAddress ?? '',
    localPort: socket.localPort ?? 0,
    tls,
    peerPrincipal,
    serverName,
  };
  cache.set(socket, c);
  return c;
}

/**
 * The connection socket of a request. For HTTP/2, `req.socket` is a proxy per stream
 * that stops resolving once the stream closes; the session's socket (one per
 * connection) stands in for it, so the per-socket cache above hits once per connection.
 */
export function requestSocket(req: { readonly socket: Socket }): Socket {
  return (req as { stream?: { session?: { socket?: Socket } } }).stream?.session?.socket ?? req.socket;
}
