/**
 * Errors with stable codes. Callers branch on `code`, never on message text, so
 * messages can improve without breaking scripts or tests.
 */
export type ErrorCode =
  | 'WEFT_ERR_INVALID'          // input failed validation (details in `details`)
  | 'WEFT_ERR_PARSE'            // YAML/JSON could not be parsed
  | 'WEFT_ERR_NOT_FOUND'
  | 'WEFT_ERR_CONFLICT'         // stale resourceVersion or already exists
  | 'WEFT_ERR_GONE'             // watch revision compacted away
  | 'WEFT_ERR_UNAUTHORIZED'
  | 'WEFT_ERR_FORBIDDEN'
  | 'WEFT_ERR_TOO_LARGE'
  | 'WEFT_ERR_BAD_REQUEST'
  | 'WEFT_ERR_UNKNOWN_KIND'
  | 'WEFT_ERR_STORE'            // the backend failed (I/O, etcd unavailable)
  | 'WEFT_ERR_UNAVAILABLE'      // a peer (control plane, upstream) cannot be reached
  | 'WEFT_ERR_USAGE'            // CLI misuse
  | 'WEFT_ERR_CAPTURE'          // transparent capture: iptables or the original destination failed
  | 'WEFT_ERR_INTERNAL';

/** One problem in one place of an input: `routes.yaml#2 spec.rules[0].backendRefs[1].weight: must be ≥ 0`. */
export interface FieldError {
  /** File name or other origin of the input (`-` for stdin, `request` for HTTP bodies). */
  source?: string;
  /** 1-based index of the YAML document within the source. */
  document?: number;
  /** Dotted path with [i] indexes, rooted at the resource: `spec.rules[0].matches`. */
  path: string;
  message: string;
}

export class WeftError extends Error {
  readonly code: ErrorCode;
  readonly details: FieldError[];
  constructor(code: ErrorCode, message: string, opts: { cause?: unknown; details?: FieldError[] } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'WeftError';
    this.code = code;
    this.details = opts.details ?? [];
  }
}

export function isWeftError(e: unknown, code?: ErrorCode): e is WeftError {
  return e instanceof WeftError && (code === undefined || e.code === code);
}

export function formatFieldError(e: FieldError): string {
  let where = e.source ?? '';
  if (e.document !== undefined) where += `#${e.document}`;
  const path = e.path === '' ? '' : e.path;
  const prefix = [where, path].filter((s) => s !== '').join(' ');
  return prefix === '' ? e.message : `${prefix}: ${e.message}`;
}

/** HTTP status for an error code; the API and CLI agree through this one table. */
export function httpStatusFor(code: ErrorCode): number {
  switch (code) {
    case 'WEFT_ERR_INVALID':
    case 'WEFT_ERR_PARSE':
    case 'WEFT_ERR_BAD_REQUEST':
    case 'WEFT_ERR_UNKNOWN_KIND':
      return 400;
    case 'WEFT_ERR_UNAUTHORIZED':
      return 401;
    case 'WEFT_ERR_FORBIDDEN':
      return 403;
    case 'WEFT_ERR_NOT_FOUND':
      return 404;
    case 'WEFT_ERR_CONFLICT':
      return 409;
    case 'WEFT_ERR_GONE':
      return 410;
    case 'WEFT_ERR_TOO_LARGE':
      return 413;
    case 'WEFT_ERR_UNAVAILABLE':
    case 'WEFT_ERR_STORE':
      return 503;
    default:
      return 500;
  }
}

export function codeForHttpStatus(status: number): ErrorCode {
  switch (status) {
    case 400: return 'WEFT_ERR_INVALID';
    case 401: return 'WEFT_ERR_UNAUTHORIZED';
    case 403: return 'WEFT_ERR_FORBIDDEN';
    case 404: return 'WEFT_ERR_NOT_FOUND';
    case 409: return 'WEFT_ERR_CONFLICT';
    case 410: return 'WEFT_ERR_GONE';
    case 413: return 'WEFT_ERR_TOO_LARGE';
    case 503: return 'WEFT_ERR_UNAVAILABLE';
    default: return 'WEFT_ERR_INTERNAL';
  }
}
