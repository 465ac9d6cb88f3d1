import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { WeftError } from '../../lib/errors.js';
import { segmentProblem } from '../../lib/identity/spiffe.js';
import { createFileExclusive, readIfExists } from './fs.js';
import type { Now } from './root.js';

/**
 * Join tokens: how a proxy proves which namespace and service account it may
 * act as before it has a certificate (`weft token create`).
 *
 * A compact JWT, HS256 with a 32-byte secret of its own in `ca/join-token-key`
 * (0600), rather than ES256 with the CA key, because:
 * - the control plane both mints and checks them: nobody else needs to verify,
 *   so a public key buys nothing;
 * - the CA key then signs only certificates (one key, one purpose), and stays
 *   usable when it is an operator's intermediate we should not use for more;
 * - tokens survive root rotation, and the secret can be replaced on its own
 *   (deleting the file invalidates every outstanding token).
 * Tokens are bearer credentials until they expire; single use is not enforced.
 */
export const JOIN_TOKEN_KEY_FILE = 'join-token-key';
const ISSUER = 'weft';
const AUDIENCE = 'weft-join';
const MAX_TOKEN_TTL_MS = 365 * 86_400_000;

export interface JoinTokenSecret {
  key: Uint8Array;
  now: Now;
}

export interface JoinTokenRequest {
  namespace: string;
  serviceAccount: string;
  ttlMs: number;
}

export interface JoinTokenClaims {
  namespace: string;
  serviceAccount: string;
  expiresAt: Date;
  /** Token id, for audit logs. */
  id: string;
}

/** The secret in `caDir/join-token-key`, made on first use (32 random bytes, base64url, 0600). */
export async function loadOrCreateJoinTokenSecret(caDir: string, now: Now = Date.now): Promise<JoinTokenSecret> {
  const path = join(caDir, JOIN_TOKEN_KEY_FILE);
  let text = await readIfExists(path);
  if (text === undefined) {
    const fresh = randomBytes(32).toString('base64url');
    text = (await createFileExclusive(path, `${fresh}\n`)) ? fresh : await readIfExists(path);
  }
  const key = Buffer.from((text ?? '').trim(), 'base64url');
  if (key.length < 32) throw new WeftError('WEFT_ERR_STORE', `${path} does not hold a 32-byte key: delete it to have a new one made (outstanding tokens stop working)`);
  return { key, now };
}

export async function createJoinToken(secret: JoinTokenSecret, req: JoinTokenRequest): Promise<string> {
  for (const [field, value] of [['namespace', req.namespace], ['serviceAccount', req.serviceAccount]] as const) {
    const p = typeof value === 'string' ? segmentProblem(value) : 'must be a string';
    if (p !== undefined) throw new WeftError('WEFT_ERR_INVALID', `join token ${field}: ${p}`, { details: [{ path: field, message: p }] });
  }
  if (!Number.isFinite(req.ttlMs) || req.ttlMs < 1000 || req.ttlMs > MAX_TOKEN_TTL_MS) {
    throw new WeftError('WEFT_ERR_INVALID', 'join token lifetime must be between 1s and 365d', { details: [{ path: 'ttl', message: 'must be between 1s and 365d' }] });
  }
  const nowSec = Math.floor(secret.now() / 1000);
  return new SignJWT({ ns: req.namespace, sa: req.serviceAccount })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt(nowSec)
    .setExpirationTime(nowSec + Math.ceil(req.ttlMs / 1000))
    .setJti(randomBytes(16).toString('base64url'))
    .sign(secret.key);
}

/** The namespace and service account a token grants; WEFT_ERR_UNAUTHORIZED saying why when it grants nothing. */
export async function verifyJoinToken(secret: JoinTokenSecret, token: string): Promise<JoinTokenClaims> {
  if (typeof token !== 'string' || token.split('.').length !== 3) throw unauthorized('malformed (not a compact JWT)');
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, secret.key, {
      algorithms: ['HS256'],
      issuer: ISSUER,
      audience: AUDIENCE,
      currentDate: new Date(secret.now()),
      requiredClaims: ['exp', 'jti'],
    }));
  } catch (e) {
    throw unauthorized(reasonFor(e), e);
  }
  const ns = payload['ns'];
  const sa = payload['sa'];
  if (typeof ns !== 'string' || segmentProblem(ns) !== undefined) throw unauthorized('malformed (bad ns claim)');
  if (typeof sa !== 'string' || segmentProblem(sa) !== undefined) throw unauthorized('malformed (bad sa claim)');
  return { namespace: ns, serviceAccount: sa, expiresAt: new Date((payload['exp'] as number) * 1000), id: String(payload['jti']) };
}

function reasonFor(e: unknown): string {
  if (e instanceof joseErrors.JWTExpired) return 'expired';
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return 'bad signature (not made by this control plane, or its join-token key changed)';
  if (e instanceof joseErrors.JOSEAlgNotAllowed) return 'bad signature algorithm';
  if (e instanceof joseErrors.JWTClaimValidationFailed) return `malformed (${e.claim} claim: ${e.reason})`;
  return 'malformed';
}

function unauthorized(reason: string, cause?: unknown): WeftError {
  return new WeftError('WEFT_ERR_UNAUTHORIZED', `join token refused: ${reason}`, cause === undefined ? {} : { cause });
}
