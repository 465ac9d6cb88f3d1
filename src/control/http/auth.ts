import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { WeftError } from '../../lib/errors.js';

export interface AuthRequest {
  /** HTTP method, upper case. */
  method: string;
  /** The Authorization header, if any. */
  authorization: string | undefined;
  /** `req.socket.remoteAddress`; undefined once the socket is gone. */
  remoteAddress: string | undefined;
}

/** Methods that change nothing: loopback peers may use them without a token. */
const READ_METHODS = new Set(['GET', 'HEAD']);

/**
 * Decides whether a request may proceed; throws WEFT_ERR_UNAUTHORIZED (401: no
 * usable credentials) or WEFT_ERR_FORBIDDEN (403: a wrong token).
 *
 * A token that is sent is always checked, even where none is needed, so a
 * stale token in a script shows up at once instead of on its first write.
 */
export function createAuthorizer(adminToken: string): (r: AuthRequest) => void {
  if (adminToken.length === 0) throw new WeftError('WEFT_ERR_INTERNAL', 'the admin token is empty');
  // Comparing fixed-size digests keeps the comparison constant-time even when
  // the lengths differ (timingSafeEqual throws on unequal lengths).
  const want = digest(adminToken);
  return (r) => {
    const token = bearerToken(r.authorization);
    if (token !== undefined) {
      if (!timingSafeEqual(digest(token), want)) throw new WeftError('WEFT_ERR_FORBIDDEN', 'the bearer token is not valid');
      return;
    }
    if (READ_METHODS.has(r.method) && isLoopback(r.remoteAddress)) return;
    const what = READ_METHODS.has(r.method) ? 'reads from a non-loopback address' : 'writes';
    throw new WeftError('WEFT_ERR_UNAUTHORIZED', `${what} need "Authorization: Bearer <token>" (the token is in DATA_DIR/admin-token)`);
  };
}

/** The token of `Bearer <token>`; undefined without a header; 401 for any other scheme. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  if (!m?.[1]) throw new WeftError('WEFT_ERR_UNAUTHORIZED', 'the Authorization header must be "Bearer <token>"');
  return m[1];
}

/** 127.0.0.0/8, ::1 and IPv4-mapped 127.x (a dual-stack socket reports those). */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  if (isIP(address) === 4) return address.startsWith('127.');
  if (isIP(address) !== 6) return false;
  // The URL parser canonicalises IPv6 (`0:0::1` → `::1`, `::ffff:127.0.0.1` → `::ffff:7f00:1`).
  let host: string;
  try {
    host = new URL(`http://[${address}]/`).hostname;
  } catch {
    return false; // zone ids (`fe80::1%eth0`) and the like: never loopback
  }
  return host === '[::1]' || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(host);
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}
