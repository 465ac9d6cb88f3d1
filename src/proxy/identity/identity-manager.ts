/**
 * The proxy's workload identity (X.509-SVID): it makes its own ECDSA P-256 key
 * (the key never leaves this process), sends a CSR to the control plane's CA
 * with its join token, holds {key, chain, bundle}, and renews at about half
 * life with jitter, each time with a fresh key. Listeners read the credentials
 * through getSecureContext() / tlsOptions(), which always give the current ones.
 *
 * Renewal authenticates with the same join token until it expires (an
 * mTLS-authenticated renewal, with the current SVID, is future work:
 * docs/security.md). A failed renewal is retried with backoff while the
 * current certificate stays in use.
 */
import { EventEmitter } from 'node:events';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { WeftError, codeForHttpStatus, type ErrorCode } from '../../lib/errors.js';
import { inspectCertificate, parseCertificates } from '../../lib/identity/cert.js';
import { createCsr } from '../../lib/identity/csr.js';
import { exportPrivateKeyPem, generateKeyPair } from '../../lib/identity/keys.js';
import { parseWorkloadId, spiffeId as makeSpiffeId } from '../../lib/identity/spiffe.js';
import type { Logger } from '../../lib/log.js';

/** Timers and time, injected so tests move time by hand. */
export interface IdentityClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: IdentityClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface IdentityManagerOptions {
  /** The control plane's HTTP API, `http://host:port`. */
  apiUrl: string;
  /** From `weft token create`. */
  joinToken: string;
  /**
   * The SPIFFE ID to ask for. Default: the namespace and service account the
   * join token names, in the trust domain `GET /ca/bundle?format=json` reports.
   */
  spiffeId?: string;
  /** Renew after this fraction of the lifetime (default 0.5). */
  renewFraction?: number;
  /** ± this fraction of the renewal delay, at random (default 0.1), so a fleet does not renew in step. */
  jitter?: number;
  clock?: IdentityClock;
  /** Random number in [0, 1) (tests fix it). */
  random?: () => number;
  /** First retry delay after a failed renewal (default 1 s, doubling to `maxRetryMs`). */
  retryMs?: number;
  maxRetryMs?: number;
  /** Bound on one request to the CA (default 10 s). */
  requestTimeoutMs?: number;
  fetch?: typeof fetch;
  log?: Logger;
}

/** What the proxy holds. */
export interface WorkloadSvid {
  spiffeId: string;
  /** Hex, lower case. */
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  /** Leaf then intermediates. */
  chainPem: string;
  /** Trusted roots. */
  bundlePem: string;
  /** PKCS#8 PEM; made here, never sent anywhere. */
  keyPem: string;
  /** When this process received it (its clock). */
  receivedAt: Date;
}

/** The `/certs` view: no key material. */
export interface CertsView {
  spiffeId: string | undefined;
  certificate?: { serialNumber: string; notBefore: string; notAfter: string; secondsUntilExpiry: number; issuer: string; uriSans: string[] };
  renewal: { nextAt?: string; renewals: number; failures: number; lastError?: string };
  trustBundle: { subject: string; serialNumber: string; notAfter: string }[];
}

export interface IdentityManager extends EventEmitter {
  /** Obtains the first SVID (rejects with the CA's refusal) and schedules renewals. */
  start(): Promise<WorkloadSvid>;
  /** The SVID in force; undefined before start() resolves. */
  current(): WorkloadSvid | undefined;
  /** Renew now (a fresh key and certificate); reschedules the next renewal. */
  renew(): Promise<WorkloadSvid>;
  /** A SecureContext with the current key, chain and bundle (rebuilt on rotation, cached between). */
  getSecureContext(): SecureContext;
  /** node:tls options with the current credentials: `{ key, cert, ca }`. */
  tlsOptions(): Required<Pick<SecureContextOptions, 'key' | 'cert' | 'ca'>>;
  /**
   * A new trust bundle (an SDS `ROOTCA` push after a root rotation): replaces the
   * bundle of the current SVID at once, without waiting for the next renewal.
   * Emits `bundle`. Ignored before start() or when unchanged.
   */
  setTrustBundle(bundlePem: string): void;
  /** For the admin `/certs` endpoint. */
  certs(): CertsView;
  /** Stops renewing. */
  close(): void;
}

/**
 * Events: `rotated` (svid: WorkloadSvid) after each new certificate, the first
 * included; `bundle` (bundlePem) after setTrustBundle changed it;
 * `renewalFailed` (err) when a renewal fails (a retry is scheduled).
 */
export function createIdentityManager(opts: IdentityManagerOptions): IdentityManager {
  return new Manager(opts);
}

interface IssueResponse {
  certificateChain?: unknown;
  trustBundle?: unknown;
  notAfter?: unknown;
  serialNumber?: unknown;
}

class Manager extends EventEmitter implements IdentityManager {
  private readonly clock: IdentityClock;
  private readonly random: () => number;
  private readonly apiUrl: string;
  private svid?: WorkloadSvid;
  private ctx?: SecureContext;
  private timer: unknown;
  private nextAt?: number;
  private closed = false;
  private renewals = 0;
  private failures = 0;
  private consecutiveFailures = 0;
  private lastError?: string;
  private inflight?: Promise<WorkloadSvid>;
  private id?: string;

  constructor(private readonly opts: IdentityManagerOptions) {
    super();
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.apiUrl = opts.apiUrl.replace(/\/+$/, '');
    const f = opts.renewFraction ?? 0.5;
    if (!(f > 0 && f < 1)) throw new WeftError('WEFT_ERR_USAGE', `renewFraction must be between 0 and 1, got ${f}`);
    const j = opts.jitter ?? 0.1;
    if (!(j >= 0 && j < 1)) throw new WeftError('WEFT_ERR_USAGE', `jitter must be in [0, 1), got ${j}`);
    if (opts.joinToken === '') throw new WeftError('WEFT_ERR_USAGE', 'a join token is required (weft token create)');
    if (opts.spiffeId !== undefined) this.id = parseWorkloadId(opts.spiffeId).id;
  }

  async start(): Promise<WorkloadSvid> {
    const svid = await this.renew();
    return svid;
  }

  current(): WorkloadSvid | undefined {
    return this.svid;
  }

  renew(): Promise<WorkloadSvid> {
    this.inflight ??= this.fetchSvid().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async fetchSvid(): Promise<WorkloadSvid> {
    if (this.closed) throw new WeftError('WEFT_ERR_UNAVAILABLE', 'the identity manager is closed');
    const id = this.id ?? (this.id = await this.defaultSpiffeId());
    const keys = await generateKeyPair();
    const csr = await createCsr(keys, id);
    const res = await this.post<IssueResponse>('/ca/certificates', { csr });
    if (typeof res.certificateChain !== 'string' || typeof res.trustBundle !== 'string') {
      throw new WeftError('WEFT_ERR_INTERNAL', `the CA at ${this.apiUrl} sent a response without certificateChain and trustBundle`);
    }
    const leaf = inspectCertificate(parseCertificates(res.certificateChain, 'certificate chain')[0]!);
    if (leaf.spiffeId !== id) throw new WeftError('WEFT_ERR_INTERNAL', `the CA issued ${leaf.spiffeId ?? 'a certificate without a SPIFFE ID'}, not ${id}`);
    parseCertificates(res.trustBundle, 'trust bundle');
    const svid: WorkloadSvid = {
      spiffeId: id,
      serialNumber: leaf.serialNumber,
      notBefore: leaf.notBefore,
      notAfter: leaf.notAfter,
      chainPem: res.certificateChain,
      bundlePem: res.trustBundle,
      keyPem: await exportPrivateKeyPem(keys.privateKey),
      receivedAt: new Date(this.clock.now()),
    };
    if (this.closed) return svid;
    const first = this.svid === undefined;
    this.svid = svid;
    this.ctx = undefined;
    if (!first) this.renewals++;
    this.consecutiveFailures = 0;
    this.lastError = undefined;
    this.schedule(this.renewalDelay(svid));
    this.opts.log?.info({ spiffeId: id, serial: svid.serialNumber, notAfter: svid.notAfter.toISOString(), renewAt: this.nextAt === undefined ? undefined : new Date(this.nextAt).toISOString() }, first ? 'identity: certificate obtained' : 'identity: certificate renewed');
    this.emit('rotated', svid);
    return svid;
  }

  /** About `renewFraction` of the remaining lifetime, ± jitter. */
  private renewalDelay(svid: WorkloadSvid): number {
    const now = this.clock.now();
    const life = Math.max(0, svid.notAfter.getTime() - now);
    const j = this.opts.jitter ?? 0.1;
    const factor = 1 + j * (2 * this.random() - 1);
    return Math.max(0, Math.round(life * (this.opts.renewFraction ?? 0.5) * factor));
  }

  private schedule(delayMs: number): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.nextAt = this.clock.now() + delayMs;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.renew().catch((err: unknown) => this.onRenewalFailure(err));
    }, delayMs);
  }

  private onRenewalFailure(err: unknown): void {
    if (this.closed) return;
    this.failures++;
    this.consecutiveFailures++;
    this.lastError = err instanceof Error ? err.message : String(err);
    const base = this.opts.retryMs ?? 1000;
    const cap = this.opts.maxRetryMs ?? 30_000;
    let delay = Math.min(cap, base * 2 ** Math.min(this.consecutiveFailures - 1, 20));
    // Never wait past the expiry of what we hold when a retry could still land before it.
    const left = (this.svid?.notAfter.getTime() ?? 0) - this.clock.now();
    if (left > 0) delay = Math.min(delay, Math.max(base, Math.floor(left / 2)));
    this.opts.log?.warn({ err: this.lastError, retryInMs: delay, expiresInMs: left }, 'identity: certificate renewal failed; retrying');
    this.schedule(delay);
    if (this.listenerCount('renewalFailed') > 0) this.emit('renewalFailed', err);
  }

  setTrustBundle(bundlePem: string): void {
    if (this.svid === undefined || this.svid.bundlePem === bundlePem) return;
    if (parseCertificates(bundlePem, 'trust bundle').length === 0) throw new WeftError('WEFT_ERR_INVALID', 'the trust bundle holds no certificate');
    this.svid = { ...this.svid, bundlePem };
    this.ctx = undefined;
    this.opts.log?.info({ roots: parseCertificates(bundlePem).length }, 'identity: trust bundle updated');
    this.emit('bundle', bundlePem);
  }

  getSecureContext(): SecureContext {
    this.ctx ??= createSecureContext(this.tlsOptions());
    return this.ctx;
  }

  tlsOptions(): Required<Pick<SecureContextOptions, 'key' | 'cert' | 'ca'>> {
    const s = this.svid;
    if (s === undefined) throw new WeftError('WEFT_ERR_UNAVAILABLE', 'no workload certificate yet (start() has not completed)');
    return { key: s.keyPem, cert: s.chainPem, ca: s.bundlePem };
  }

  certs(): CertsView {
    const s = this.svid;
    const view: CertsView = {
      spiffeId: s?.spiffeId ?? this.id,
      renewal: { renewals: this.renewals, failures: this.failures },
      trustBundle: [],
    };
    if (this.nextAt !== undefined) view.renewal.nextAt = new Date(this.nextAt).toISOString();
    if (this.lastError !== undefined) view.renewal.lastError = this.lastError;
    if (s !== undefined) {
      const leaf = inspectCertificate(parseCertificates(s.chainPem)[0]!);
      view.certificate = {
        serialNumber: s.serialNumber,
        notBefore: s.notBefore.toISOString(),
        notAfter: s.notAfter.toISOString(),
        secondsUntilExpiry: Math.floor((s.notAfter.getTime() - this.clock.now()) / 1000),
        issuer: leaf.issuer,
        uriSans: leaf.uriSans,
      };
      view.trustBundle = parseCertificates(s.bundlePem).map((c) => ({ subject: c.subject, serialNumber: c.serialNumber.toLowerCase(), notAfter: c.notAfter.toISOString() }));
    }
    return view;
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.nextAt = undefined;
  }

  /** `spiffe://<td>/ns/<ns>/sa/<sa>` from the token's claims (read, not verified: the CA decides) and the CA's trust domain. */
  private async defaultSpiffeId(): Promise<string> {
    const claims = unverifiedClaims(this.opts.joinToken);
    const info = await this.get<{ trustDomain?: unknown }>('/ca/bundle?format=json');
    if (typeof info.trustDomain !== 'string') throw new WeftError('WEFT_ERR_INTERNAL', `the control plane at ${this.apiUrl} did not report its trust domain`);
    return makeSpiffeId(info.trustDomain, claims.ns, claims.sa);
  }

  private get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path, undefined);
  }

  private post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, body);
  }

  private async request<T>(method: string, path: string, body: unknown): Promise<T> {
    const f = this.opts.fetch ?? fetch;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers.authorization = `Bearer ${this.opts.joinToken}`;
    }
    let res: Response;
    let text: string;
    try {
      res = await f(this.apiUrl + path, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.opts.requestTimeoutMs ?? 10_000),
      });
      text = await res.text();
    } catch (e) {
      throw new WeftError('WEFT_ERR_UNAVAILABLE', `cannot reach the control plane at ${this.apiUrl}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const message = typeof (json as { message?: unknown } | undefined)?.message === 'string' ? (json as { message: string }).message : text.slice(0, 200);
      const reason = (json as { reason?: unknown } | undefined)?.reason;
      const code = typeof reason === 'string' && reason.startsWith('WEFT_ERR_') ? (reason as ErrorCode) : codeForHttpStatus(res.status);
      throw new WeftError(code, `${method} ${path}: ${res.status}: ${message}`);
    }
    if (json === undefined || typeof json !== 'object' || json === null) throw new WeftError('WEFT_ERR_INTERNAL', `${method} ${path}: the response is not JSON`);
    return json as T;
  }
}

/** The `ns` and `sa` claims of a join token, decoded without verification (only the control plane can verify it). */
export function unverifiedClaims(token: string): { ns: string; sa: string } {
  const part = token.split('.')[1];
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(part ?? '', 'base64url').toString('utf8'));
  } catch (e) {
    throw new WeftError('WEFT_ERR_USAGE', 'the join token is not a JWT (use the token weft token create printed)', { cause: e });
  }
  const p = payload as { ns?: unknown; sa?: unknown };
  if (typeof p.ns !== 'string' || typeof p.sa !== 'string') throw new WeftError('WEFT_ERR_USAGE', 'the join token names no namespace and service account (use the token weft token create printed)');
  return { ns: p.ns, sa: p.sa };
}
