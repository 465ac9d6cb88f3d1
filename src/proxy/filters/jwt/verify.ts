/**
 * One token against one provider: format, issuer, keys (with one refetch on an unknown
 * kid), signature, time claims with the provider's clock skew, audiences, subject and
 * lifetime. jose does the cryptography; its errors map onto Envoy's statuses.
 */
import type { JWTPayload, ProtectedHeaderParameters } from 'jose';
import { loadJose } from './jose-lazy.js';
import { stringMatches } from '../../config/compile-route.js';
import type { JwtProvider } from './config.js';
import type { KeyResolver } from './jwks.js';
import type { JwtStatus } from './status.js';

export interface Verified {
  readonly payload: JWTPayload;
  readonly header: ProtectedHeaderParameters;
}

export type VerifyResult = { readonly status: 'Ok'; readonly verified: Verified } | { readonly status: Exclude<JwtStatus, 'Ok'> };

function mapError(errors: typeof import('jose').errors, e: unknown): Exclude<JwtStatus, 'Ok'> {
  if (e instanceof errors.JWTExpired) return 'JwtExpired';
  if (e instanceof errors.JWTClaimValidationFailed) {
    switch (e.claim) {
      case 'nbf': return 'JwtNotYetValid';
      case 'aud': return 'JwtAudienceNotAllowed';
      case 'iss': return 'JwtUnknownIssuer';
      case 'exp': return e.reason === 'missing' ? 'JwtMissingExpiration' : 'JwtExpired';
      default: return 'JwtVerificationFail';
    }
  }
  if (e instanceof errors.JWKSNoMatchingKey) return 'JwksKidAlgMismatch';
  if (e instanceof errors.JWSInvalid || e instanceof errors.JWTInvalid) return 'JwtBadFormat';
  return 'JwtVerificationFail';
}

export async function verifyToken(p: JwtProvider, audiences: readonly string[] | undefined, token: string, nowMs: number): Promise<VerifyResult> {
  const { decodeJwt, decodeProtectedHeader, errors, jwtVerify } = await loadJose();
  let payload: JWTPayload;
  try {
    decodeProtectedHeader(token);
    payload = decodeJwt(token);
  } catch {
    return { status: 'JwtBadFormat' };
  }
  // The issuer is checked before any key is fetched: a token for another provider costs nothing.
  if (p.issuer !== undefined && payload.iss !== p.issuer) return { status: 'JwtUnknownIssuer' };
  const aud = audiences ?? p.audiences;
  const opts = {
    audience: aud === undefined ? undefined : [...aud],
    clockTolerance: p.clockSkewSec,
    currentDate: new Date(nowMs),
    requiredClaims: p.requireExpiration ? ['exp'] : [],
  };
  const attempt = async (keys: KeyResolver): Promise<VerifyResult> => {
    const r = await jwtVerify(token, keys, opts);
    return { status: 'Ok', verified: { payload: r.payload, header: r.protectedHeader } };
  };
  let out: VerifyResult;
  try {
    let keys: KeyResolver;
    try { keys = await p.jwks.keys(); } catch { return { status: 'JwksFetchFail' }; }
    try {
      out = await attempt(keys);
    } catch (e) {
      if (!(e instanceof errors.JWKSNoMatchingKey) || !(await p.jwks.refreshForUnknownKid())) throw e;
      // Key rotation: the IdP signs with a key published after our copy of its set.
      try { keys = await p.jwks.keys(); } catch { return { status: 'JwksFetchFail' }; }
      out = await attempt(keys);
    }
  } catch (e) {
    return { status: mapError(errors, e) };
  }
  if (out.status !== 'Ok') return out;
  const v = out.verified.payload;
  if (p.subjects !== undefined && (typeof v.sub !== 'string' || !stringMatches(p.subjects, v.sub))) return { status: 'JwtSubjectNotAllowed' };
  if (p.maxLifetimeSec !== undefined) {
    if (typeof v.exp !== 'number') return { status: 'JwtMissingExpiration' };
    const from = typeof v.iat === 'number' ? v.iat : typeof v.nbf === 'number' ? v.nbf : nowMs / 1000;
    if (v.exp - from > p.maxLifetimeSec) return { status: 'JwtLifetimeExceeded' };
  }
  return out;
}
