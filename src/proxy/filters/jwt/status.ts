/**
 * Verification outcomes, named and worded as Envoy's jwt_verify library does so that
 * logs and failed_status_in_metadata read the same under Envoy and Weft.
 */
export type JwtStatus =
  | 'Ok'
  | 'JwtMissed'
  | 'JwtBadFormat'
  | 'JwtExpired'
  | 'JwtNotYetValid'
  | 'JwtAudienceNotAllowed'
  | 'JwtUnknownIssuer'
  | 'JwtVerificationFail'
  | 'JwtMissingExpiration'
  | 'JwtSubjectNotAllowed'
  | 'JwtLifetimeExceeded'
  | 'JwksKidAlgMismatch'
  | 'JwksFetchFail';

export const JWT_STATUS_MESSAGES: Readonly<Record<JwtStatus, string>> = {
  Ok: 'OK',
  JwtMissed: 'Jwt is missing',
  JwtBadFormat: 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections',
  JwtExpired: 'Jwt is expired',
  JwtNotYetValid: 'Jwt not yet valid',
  JwtAudienceNotAllowed: 'Audiences in Jwt are not allowed',
  JwtUnknownIssuer: 'Jwt issuer is not configured',
  JwtVerificationFail: 'Jwt verification fails',
  JwtMissingExpiration: 'Jwt is missing the expiration',
  JwtSubjectNotAllowed: 'Jwt subject is not allowed',
  JwtLifetimeExceeded: 'Jwt lifetime exceeds the allowed maximum',
  JwksKidAlgMismatch: 'Jwks doesn\'t have key to match kid or alg from Jwt',
  JwksFetchFail: 'Jwks remote fetch is failed',
};
