import { WeftError, type ErrorCode } from '../../lib/errors.js';
import { spiffeId } from '../../lib/identity/spiffe.js';
import { bundlePem, promoteRoot, retireRoot, rotateRoot, type RetireResult } from './bundle.js';
import { loadOrCreateCa, type CaMaterial, type LoadCaOptions, type TrustedRoot } from './root.js';
import { signWorkloadCsr, type IssuedSvid } from './sign.js';
import {
  createJoinToken, loadOrCreateJoinTokenSecret, verifyJoinToken,
  type JoinTokenClaims, type JoinTokenRequest, type JoinTokenSecret,
} from './tokens.js';

export const DEFAULT_WORKLOAD_TTL_MS = 24 * 3_600_000;

export interface CertificateAuthorityOptions extends LoadCaOptions {
  /** Lifetime of workload certificates unless a call says otherwise (default 24 h). */
  workloadTtlMs?: number;
  /**
   * The join-token HMAC key (32+ bytes), when it comes from elsewhere than
   * `ca/join-token-key`: replicas on one etcd share one (src/control/ha/ca-shared.ts).
   */
  joinTokenKey?: Uint8Array;
}

export interface CaStats {
  /** Certificates issued since start. */
  issuedTotal: number;
  /** Requests refused since start, by error code. */
  refusedTotal: Partial<Record<ErrorCode, number>>;
  /** Issued certificates not yet expired. */
  liveCertificates: number;
  /** The soonest notAfter among them. */
  soonestExpiry?: Date;
  /** notAfter of the certificate that signs workload certificates. */
  signerNotAfter: Date;
  /** The soonest notAfter among trusted roots. */
  rootNotAfter: Date;
}

export interface CertificateAuthority {
  readonly trustDomain: string;
  /** The signing and trust material (read it; change it only through the methods below). */
  readonly material: CaMaterial;
  /** PEM of every trusted root. */
  bundlePem(): string;
  createJoinToken(req: Omit<JoinTokenRequest, 'ttlMs'> & { ttlMs?: number }): Promise<string>;
  verifyJoinToken(token: string): Promise<JoinTokenClaims>;
  /** Verify the join token, then sign the CSR for the identity it grants. */
  issueForToken(token: string, csrPem: string, opts?: { ttlMs?: number }): Promise<IssuedSvid>;
  /** Sign for an identity the caller has already authenticated (renewal over mTLS). */
  issueFor(id: { namespace: string; serviceAccount: string }, csrPem: string, opts?: { ttlMs?: number }): Promise<IssuedSvid>;
  rotateRoot(): Promise<TrustedRoot>;
  promoteRoot(): Promise<void>;
  retireRoot(opts?: { force?: boolean }): Promise<RetireResult>;
  stats(): CaStats;
}

/** Token default lifetime: long enough to start a proxy by hand, short enough not to linger. */
const DEFAULT_TOKEN_TTL_MS = 24 * 3_600_000;

export async function createCertificateAuthority(dataDir: string, opts: CertificateAuthorityOptions): Promise<CertificateAuthority> {
  const material = await loadOrCreateCa(dataDir, opts);
  const secret: JoinTokenSecret = opts.joinTokenKey !== undefined
    ? sharedSecret(opts.joinTokenKey, material.now)
    : await loadOrCreateJoinTokenSecret(material.dir, material.now);
  const defaultTtl = opts.workloadTtlMs ?? DEFAULT_WORKLOAD_TTL_MS;
  let issuedTotal = 0;
  const refused: Partial<Record<ErrorCode, number>> = {};
  // serial → notAfter of live certificates; pruned when read, bounded by renewals in flight.
  const live = new Map<string, number>();

  async function counted<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      const code: ErrorCode = e instanceof WeftError ? e.code : 'WEFT_ERR_INTERNAL';
      refused[code] = (refused[code] ?? 0) + 1;
      throw e;
    }
  }

  async function issue(ns: string, sa: string, csrPem: string, ttlMs: number | undefined): Promise<IssuedSvid> {
    const svid = await signWorkloadCsr(material, csrPem, { spiffeId: spiffeId(material.trustDomain, ns, sa), ttlMs: ttlMs ?? defaultTtl });
    issuedTotal++;
    live.set(svid.serialNumber, svid.notAfter.getTime());
    return svid;
  }

  return {
    trustDomain: material.trustDomain,
    material,
    bundlePem: () => bundlePem(material),
    createJoinToken: (req) => createJoinToken(secret, { ...req, ttlMs: req.ttlMs ?? DEFAULT_TOKEN_TTL_MS }),
    verifyJoinToken: (token) => verifyJoinToken(secret, token),
    issueForToken: (token, csrPem, o = {}) => counted(async () => {
      const claims = await verifyJoinToken(secret, token);
      return issue(claims.namespace, claims.serviceAccount, csrPem, o.ttlMs);
    }),
    issueFor: (id, csrPem, o = {}) => counted(() => issue(id.namespace, id.serviceAccount, csrPem, o.ttlMs)),
    rotateRoot: () => rotateRoot(material, opts.rootTtlMs === undefined ? {} : { rootTtlMs: opts.rootTtlMs }),
    promoteRoot: () => promoteRoot(material),
    retireRoot: (o) => retireRoot(material, o),
    stats() {
      const now = material.now();
      let soonest: number | undefined;
      for (const [serial, notAfter] of live) {
        if (notAfter <= now) live.delete(serial);
        else if (soonest === undefined || notAfter < soonest) soonest = notAfter;
      }
      const s: CaStats = {
        issuedTotal,
        refusedTotal: { ...refused },
        liveCertificates: live.size,
        signerNotAfter: material.signer.cert.notAfter,
        rootNotAfter: new Date(Math.min(...material.roots.map((r) => r.cert.notAfter.getTime()))),
      };
      if (soonest !== undefined) s.soonestExpiry = new Date(soonest);
      return s;
    },
  };
}

function sharedSecret(key: Uint8Array, now: JoinTokenSecret['now']): JoinTokenSecret {
  if (key.length < 32) throw new WeftError('WEFT_ERR_INVALID', `the join-token key must be at least 32 bytes (got ${key.length})`);
  return { key, now };
}
