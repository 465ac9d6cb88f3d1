/**
 * Route hash_policy cookies with a ttl (Envoy's generated cookies): when the request
 * has no such cookie, the proxy makes one up, hashes on it, and sets it on the
 * response so the client's next requests stick to the same host. As in Envoy the
 * value is a hash of the downstream address, so requests racing on one connection
 * get the same cookie; `Max-Age` is the ttl in seconds (no Max-Age when 0: a session
 * cookie).
 */
import type { IncomingMessage } from 'node:http';
import type { HashPolicy } from '../config/types.js';
import { hash53 } from '../upstream/lb/hash.js';

/** The value a generated cookie gets for this request's connection. */
export function generatedCookieValue(req: IncomingMessage): string {
  return hash53(`${req.socket.remoteAddress ?? ''}:${req.socket.remotePort ?? 0}`).toString(16).padStart(14, '0');
}

function hasCookie(header: string | undefined, name: string): boolean {
  if (header === undefined) return false;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return true;
  }
  return false;
}

/** The Set-Cookie header value to add to the response, or undefined. */
export function generatedSetCookie(policies: readonly HashPolicy[], req: IncomingMessage): string | undefined {
  for (const p of policies) {
    if (p.kind !== 'cookie' || p.ttlMs === undefined || hasCookie(req.headers.cookie, p.name)) continue;
    const maxAge = Math.floor(p.ttlMs / 1000);
    return `${p.name}="${generatedCookieValue(req)}"${maxAge > 0 ? `; Max-Age=${maxAge}` : ''}${p.path === undefined ? '' : `; Path=${p.path}`}; HttpOnly`;
  }
  return undefined;
}
