import { WeftError } from '../errors.js';

/**
 * SPIFFE IDs as the SPIFFE-ID standard defines them
 * (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md):
 * `spiffe://<trust domain><path>`, nothing else in the URI.
 *
 * - trust domain: 1..255 chars of `[a-z0-9._-]`; no uppercase, port, user info.
 * - path: `/segment` repeated; segments non-empty, of `[A-Za-z0-9._-]`, and not
 *   `.` or `..`; no trailing slash, query or fragment.
 * - the whole ID is at most 2048 bytes.
 *
 * Weft workload IDs are `spiffe://<td>/ns/<namespace>/sa/<serviceAccount>`.
 */
export const SPIFFE_SCHEME = 'spiffe://';
const MAX_ID_LENGTH = 2048;
const MAX_TRUST_DOMAIN_LENGTH = 255;
const TRUST_DOMAIN_CHARS = /^[a-z0-9._-]+$/;
const SEGMENT_CHARS = /^[A-Za-z0-9._-]+$/;

export interface SpiffeId {
  /** The ID as text, exactly as parsed or formatted. */
  id: string;
  trustDomain: string;
  /** `/ns/x/sa/y`; empty for the ID of the trust domain itself. */
  path: string;
  /** Set when the path has Weft's workload form `/ns/<namespace>/sa/<serviceAccount>`. */
  namespace?: string;
  serviceAccount?: string;
}

function invalid(text: string, why: string): WeftError {
  return new WeftError('WEFT_ERR_INVALID', `invalid SPIFFE ID ${JSON.stringify(text)}: ${why}`, {
    details: [{ path: 'spiffeId', message: why }],
  });
}

/** Why `td` is not a valid trust domain name, or undefined when it is. */
export function trustDomainProblem(td: string): string | undefined {
  if (td === '') return 'trust domain is empty';
  if (td.length > MAX_TRUST_DOMAIN_LENGTH) return `trust domain is longer than ${MAX_TRUST_DOMAIN_LENGTH} characters`;
  if (!TRUST_DOMAIN_CHARS.test(td)) {
    return /[A-Z]/.test(td)
      ? 'trust domain must be lowercase'
      : 'trust domain may hold only letters a-z, digits, ".", "-" and "_" (no port, user info or percent-encoding)';
  }
  return undefined;
}

/** Why `segment` is not a valid SPIFFE path segment, or undefined when it is. */
export function segmentProblem(segment: string): string | undefined {
  if (segment === '') return 'path segments must not be empty (no "//" and no trailing "/")';
  if (segment === '.' || segment === '..') return 'path segments must not be "." or ".."';
  if (!SEGMENT_CHARS.test(segment)) return `path segment ${JSON.stringify(segment)} may hold only letters, digits, ".", "-" and "_"`;
  return undefined;
}

/** `spiffe://<td>/ns/<ns>/sa/<sa>`; throws WEFT_ERR_INVALID when a part cannot appear in a SPIFFE ID. */
export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  const text = `${SPIFFE_SCHEME}${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
  const tdProblem = trustDomainProblem(trustDomain);
  if (tdProblem !== undefined) throw invalid(text, tdProblem);
  for (const [what, seg] of [['namespace', namespace], ['service account', serviceAccount]] as const) {
    const p = segmentProblem(seg);
    if (p !== undefined) throw invalid(text, `${what}: ${p}`);
  }
  if (Buffer.byteLength(text) > MAX_ID_LENGTH) throw invalid(text, `longer than ${MAX_ID_LENGTH} bytes`);
  return text;
}

/** Parse and validate a SPIFFE ID strictly; throws WEFT_ERR_INVALID naming the first problem. */
export function parseSpiffeId(text: string): SpiffeId {
  if (Buffer.byteLength(text) > MAX_ID_LENGTH) throw invalid(text.slice(0, 64) + '…', `longer than ${MAX_ID_LENGTH} bytes`);
  if (!text.startsWith(SPIFFE_SCHEME)) {
    throw invalid(text, /^spiffe:\/\//i.test(text) ? 'the scheme must be lowercase "spiffe"' : 'must start with "spiffe://"');
  }
  const rest = text.slice(SPIFFE_SCHEME.length);
  if (rest.includes('?')) throw invalid(text, 'must not have a query');
  if (rest.includes('#')) throw invalid(text, 'must not have a fragment');
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  const tdProblem = trustDomainProblem(trustDomain);
  if (tdProblem !== undefined) throw invalid(text, tdProblem);
  const out: SpiffeId = { id: text, trustDomain, path };
  if (path === '') return out;
  const segments = path.slice(1).split('/');
  for (const seg of segments) {
    const p = segmentProblem(seg);
    if (p !== undefined) throw invalid(text, p);
  }
  if (segments.length === 4 && segments[0] === 'ns' && segments[2] === 'sa') {
    out.namespace = segments[1];
    out.serviceAccount = segments[3];
  }
  return out;
}

/** Parse a Weft workload ID (`/ns/<ns>/sa/<sa>` path), refusing other shapes. */
export function parseWorkloadId(text: string): Required<SpiffeId> {
  const id = parseSpiffeId(text);
  if (id.namespace === undefined || id.serviceAccount === undefined) {
    throw invalid(text, 'a workload ID has the path /ns/<namespace>/sa/<serviceAccount>');
  }
  return id as Required<SpiffeId>;
}
