import type { KindDescriptor } from '../api/descriptor.js';
import type { Resource } from '../api/types.js';
import { codeForHttpStatus, WeftError, type ErrorCode, type FieldError } from '../lib/errors.js';

export interface TokenSource {
  token?: string;
  /** Where the token came from (`--token`, `WEFT_TOKEN`, a file), for auth error messages. */
  origin?: string;
  /** Why there is no token from the data directory that was named, if that is the reason. */
  problem?: string;
}

export const TOKEN_HELP = 'pass --token, set WEFT_TOKEN, or name the data directory of the control plane with --data-dir or WEFT_DATA_DIR';

export interface ClientOptions {
  /** `http://host:port`, no trailing slash. */
  server: string;
  token: TokenSource;
}

/** A list response: `{ apiVersion, kind: <Kind>List, metadata: { resourceVersion }, items }`. */
export interface ObjectList {
  apiVersion: string;
  kind: string;
  metadata: { resourceVersion?: string };
  items: Resource[];
}

export type ApplyAction = 'created' | 'configured' | 'unchanged';

export interface ApplyResult {
  items: { kind: string; namespace?: string; name: string; action: ApplyAction }[];
  dryRun: boolean;
}

interface RequestOptions {
  query?: Record<string, string | undefined>;
  body?: string;
  contentType?: string;
}

/** Error codes of network failures that mean "nothing is listening there". */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET']);

/** Names in request paths: the server refuses anything else before routing. */
const SEGMENT = /^[A-Za-z0-9._-]+$/;

/**
 * The control plane's HTTP API (docs/http-api.md) as the CLI uses it. Failures
 * become WeftErrors with the server's stable code and field details, so the
 * CLI reports them the same way as its own.
 */
export class ApiClient {
  constructor(private readonly opts: ClientOptions) {}

  get server(): string {
    return this.opts.server;
  }

  /** A collection path; `namespace` undefined means every namespace. */
  collectionPath(d: KindDescriptor, namespace: string | undefined): string {
    const base = `/apis/${d.group}/${d.versions[0]}`;
    if (!d.namespaced || namespace === undefined) return `${base}/${d.plural}`;
    return `${base}/namespaces/${segment(namespace, 'namespace')}/${d.plural}`;
  }

  objectPath(d: KindDescriptor, namespace: string, name: string): string {
    return `${this.collectionPath(d, d.namespaced ? namespace : undefined)}/${segment(name, 'name')}`;
  }

  list(d: KindDescriptor, opts: { namespace?: string; labelSelector?: string } = {}): Promise<ObjectList> {
    return this.json<ObjectList>('GET', this.collectionPath(d, opts.namespace), { query: { labelSelector: opts.labelSelector } });
  }

  get(d: KindDescriptor, namespace: string, name: string): Promise<Resource> {
    return this.json<Resource>('GET', this.objectPath(d, namespace, name));
  }

  delete(d: KindDescriptor, namespace: string, name: string, opts: { dryRun?: boolean } = {}): Promise<Resource> {
    return this.json<Resource>('DELETE', this.objectPath(d, namespace, name), { query: { dryRun: opts.dryRun ? 'All' : undefined } });
  }

  /** POST /apply with a JSON body (one object or a `kind: List`). */
  apply(body: unknown, opts: { namespace?: string; dryRun?: boolean } = {}): Promise<ApplyResult> {
    return this.json<ApplyResult>('POST', '/apply', {
      query: { namespace: opts.namespace, dryRun: opts.dryRun ? 'All' : undefined },
      body: JSON.stringify(body),
      contentType: 'application/json',
    });
  }

  async json<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const text = await this.request(method, path, opts);
    try {
      return JSON.parse(text) as T;
    } catch (e) {
      throw new WeftError('WEFT_ERR_INTERNAL', `the control plane at ${this.server} sent a response that is not JSON (is it a Weft control plane?)`, { cause: e });
    }
  }

  async request(method: string, path: string, opts: RequestOptions = {}): Promise<string> {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined && v !== '') url.searchParams.set(k, v);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.opts.token.token !== undefined) headers.authorization = `Bearer ${this.opts.token.token}`;
    if (opts.contentType !== undefined) headers['content-type'] = opts.contentType;
    let res: Response;
    try {
      res = await fetch(url, { method, headers, body: opts.body });
    } catch (e) {
      throw this.networkError(e);
    }
    let text: string;
    try {
      text = await res.text();
    } catch (e) {
      throw this.networkError(e);
    }
    if (!res.ok) throw this.statusError(res.status, text);
    return text;
  }

  private networkError(e: unknown): WeftError {
    const code = causeCode(e);
    if (code !== undefined && UNREACHABLE.has(code)) {
      return new WeftError('WEFT_ERR_UNAVAILABLE', `cannot reach the control plane at ${this.server} (is 'weft control' running?)`, { cause: e });
    }
    const detail = e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : String(e);
    return new WeftError('WEFT_ERR_UNAVAILABLE', `request to the control plane at ${this.server} failed: ${detail}`, { cause: e });
  }

  private statusError(status: number, text: string): WeftError {
    const body = parseStatus(text);
    const code: ErrorCode = body?.reason ?? codeForHttpStatus(status);
    if (status === 401) {
      const why = this.opts.token.problem === undefined ? '' : ` (${this.opts.token.problem})`;
      return new WeftError('WEFT_ERR_UNAUTHORIZED', `this needs the admin token${why}: ${TOKEN_HELP}`, {
        cause: new Error(body?.message ?? text),
      });
    }
    if (status === 403) {
      return new WeftError('WEFT_ERR_FORBIDDEN', `the control plane refused the admin token from ${this.opts.token.origin ?? '?'} (is it from another data directory?)`, {
        cause: new Error(body?.message ?? text),
      });
    }
    const message = body?.message ?? `the control plane answered ${status}${text.trim() === '' ? '' : `: ${text.trim().slice(0, 200)}`}`;
    return new WeftError(code, message, { details: body?.details ?? [] });
  }
}

interface StatusBody {
  reason: ErrorCode;
  message: string;
  details: FieldError[];
}

function parseStatus(text: string): StatusBody | undefined {
  try {
    const v = JSON.parse(text) as Partial<StatusBody> & { kind?: unknown };
    if (v.kind !== 'Status' || typeof v.message !== 'string' || typeof v.reason !== 'string') return undefined;
    return { reason: v.reason, message: v.message, details: Array.isArray(v.details) ? v.details : [] };
  } catch {
    return undefined;
  }
}

/** The errno-style code of a fetch failure (undici puts it on `cause`, sometimes nested). */
function causeCode(e: unknown): string | undefined {
  let cur: unknown = e;
  for (let i = 0; i < 5 && typeof cur === 'object' && cur !== null; i++) {
    const c = (cur as { code?: unknown }).code;
    if (typeof c === 'string') return c;
    const errors = (cur as { errors?: unknown }).errors;
    if (Array.isArray(errors) && errors.length > 0) {
      cur = errors[0];
      continue;
    }
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

function segment(s: string, what: string): string {
  if (!SEGMENT.test(s) || s === '.' || s === '..') throw new WeftError('WEFT_ERR_USAGE', `invalid ${what} "${s}": use letters, digits, '.', '-' and '_'`);
  return s;
}
