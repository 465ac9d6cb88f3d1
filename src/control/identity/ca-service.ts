import { DEFAULT_MESH_NAME } from '../../api/mesh/mesh.js';
import { formatDuration, parseDuration } from '../../lib/duration.js';
import { WeftError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import type { ConfigStore } from '../../store/types.js';
import { createCertificateAuthority, DEFAULT_WORKLOAD_TTL_MS, type CaStats, type CertificateAuthority } from '../ca/ca.js';
import type { Now, SuppliedCaFiles } from '../ca/root.js';
import type { IssuedSvid } from '../ca/sign.js';

/** Used when no Mesh named `default` exists (DESIGN.md, "Identity"). */
export const DEFAULT_TRUST_DOMAIN = 'cluster.local';

/** What the metrics read (src/control/http/metrics.ts). */
export interface CaMetricsSource {
  stats(): Pick<CaStats, 'issuedTotal' | 'soonestExpiry' | 'liveCertificates'>;
}

/** An SVID as the HTTP API hands it out: the chain, the bundle to verify peers with. */
export interface IssuedWorkloadCertificate extends IssuedSvid {
  trustBundlePem: string;
}

/**
 * The control plane's CA as the other parts use it: the HTTP API (tokens,
 * certificates, bundle), SDS (the bundle, and its changes) and metrics.
 *
 * `ca` is the CertificateAuthority itself, with rotateRoot/promoteRoot/retireRoot
 * wrapped so that every change of the trust bundle reaches `onBundleChange`
 * subscribers (SDS pushes it to proxies). Change roots only through it.
 */
export interface CaService extends CaMetricsSource {
  readonly ca: CertificateAuthority;
  readonly trustDomain: string;
  bundlePem(): string;
  /** Verifies the join token, signs the CSR for the identity it grants, with the Mesh's workload TTL. */
  issueForToken(token: string, csrPem: string): Promise<IssuedWorkloadCertificate>;
  /** Called with the new bundle after each change; returns an unsubscribe function. */
  onBundleChange(cb: (bundlePem: string) => void): () => void;
  /** The workload certificate lifetime the next issuance gets, and where it comes from. */
  workloadTtl(): Promise<WorkloadTtl>;
  /**
   * Replicas share the store (etcd): a root rotated here would not reach the
   * others' CAs, so the rotate API refuses (src/control/http/ca.ts).
   */
  readonly replicated: boolean;
  close(): void;
}

export interface WorkloadTtl {
  ms: number;
  /** `override`: --dev-workload-ttl; `mesh`: the Mesh's certificates.workloadTTL (or its default). */
  source: 'override' | 'mesh';
}

export interface CaServiceOptions {
  dataDir: string;
  store: ConfigStore;
  log?: Logger;
  supplied?: SuppliedCaFiles;
  /** The join-token key shared by every replica (etcd); absent: `DATA_DIR/ca/join-token-key`. */
  joinTokenKey?: Uint8Array;
  /** Injected clock (tests). */
  now?: Now;
  /**
   * `weft control --dev-workload-ttl`: every workload certificate gets this
   * lifetime and the Mesh's `workloadTTL` is not read. For tests and demos of
   * rotation with second-scale lifetimes, below the Mesh's 1m floor
   * (DEV_WORKLOAD_TTL_MIN_MS at least).
   */
  workloadTtlOverrideMs?: number;
  /** Replicas share the store (etcd); see CaService.replicated. */
  replicated?: boolean;
}

/**
 * The shortest `--dev-workload-ttl`: renewal at half life must leave time for a
 * key, a CSR and a round trip to the CA, and the signer refuses less than 1 s.
 */
export const DEV_WORKLOAD_TTL_MIN_MS = 2000;

interface MeshSettings {
  trustDomain: string;
  workloadTtlMs: number;
}

/**
 * Reads the Mesh named `default`: its trust domain and workload certificate
 * lifetime. Absent (or unreadable), the defaults. The stored object passed
 * validation, so its fields have their defaults filled in.
 */
export async function readMeshSettings(store: ConfigStore): Promise<MeshSettings> {
  const mesh = await store.get({ kind: 'Mesh', namespace: '', name: DEFAULT_MESH_NAME });
  const spec = (mesh?.spec ?? {}) as { trustDomain?: unknown; certificates?: { workloadTTL?: unknown } };
  const trustDomain = typeof spec.trustDomain === 'string' && spec.trustDomain !== '' ? spec.trustDomain : DEFAULT_TRUST_DOMAIN;
  const ttlText = spec.certificates?.workloadTTL;
  const ttl = typeof ttlText === 'string' ? parseDuration(ttlText) : undefined;
  return { trustDomain, workloadTtlMs: ttl ?? DEFAULT_WORKLOAD_TTL_MS };
}

/**
 * Opens (or creates, on first start) the CA in `DATA_DIR/ca`. The trust domain
 * is fixed for the life of the process: it is read at start from the Mesh
 * named `default` and names every identity. A changed trust domain takes a
 * restart, and then the root made for the old one (its CN names it) keeps
 * signing: a different trust domain wants a new data directory. The workload TTL is read
 * from the Mesh at each issuance, so a change applies to the next certificate.
 */
export async function startCaService(opts: CaServiceOptions): Promise<CaService> {
  const initial = await readMeshSettings(opts.store);
  const override = opts.workloadTtlOverrideMs;
  if (override !== undefined && !(Number.isInteger(override) && override >= DEV_WORKLOAD_TTL_MIN_MS)) {
    throw new WeftError('WEFT_ERR_USAGE', `workload TTL override ${override} ms: must be at least ${DEV_WORKLOAD_TTL_MIN_MS} ms`);
  }
  const inner = await createCertificateAuthority(opts.dataDir, {
    trustDomain: initial.trustDomain,
    ...(opts.supplied ? { supplied: opts.supplied } : {}),
    ...(opts.joinTokenKey ? { joinTokenKey: opts.joinTokenKey } : {}),
    ...(opts.now ? { now: opts.now } : {}),
    workloadTtlMs: override ?? initial.workloadTtlMs,
  });
  const listeners = new Set<(bundle: string) => void>();
  const notify = (): void => {
    const bundle = inner.bundlePem();
    for (const cb of [...listeners]) {
      try {
        cb(bundle);
      } catch (err) {
        opts.log?.error({ err }, 'ca: a trust bundle subscriber failed');
      }
    }
  };
  const changing = <A extends unknown[], R>(fn: (...a: A) => Promise<R>) => async (...a: A): Promise<R> => {
    const before = inner.bundlePem();
    const out = await fn(...a);
    if (inner.bundlePem() !== before) {
      opts.log?.info({ roots: inner.material.roots.map((r) => r.id) }, 'ca: trust bundle changed');
      notify();
    }
    return out;
  };
  const ca: CertificateAuthority = {
    ...inner,
    trustDomain: inner.trustDomain,
    material: inner.material,
    rotateRoot: changing(() => inner.rotateRoot()),
    promoteRoot: changing(() => inner.promoteRoot()),
    retireRoot: changing((o?: { force?: boolean }) => inner.retireRoot(o)),
  };
  async function workloadTtl(): Promise<WorkloadTtl> {
    if (override !== undefined) return { ms: override, source: 'override' };
    try {
      return { ms: (await readMeshSettings(opts.store)).workloadTtlMs, source: 'mesh' };
    } catch (err) {
      opts.log?.warn({ err }, 'ca: cannot read the Mesh; using the workload TTL read at start');
      return { ms: initial.workloadTtlMs, source: 'mesh' };
    }
  }
  opts.log?.info({ trustDomain: inner.trustDomain, source: inner.material.source, roots: inner.material.roots.length }, 'ca: ready');
  if (override !== undefined) {
    // Loud on purpose: a fleet renewing every few seconds is a test set-up, never production.
    opts.log?.warn({ workloadTtl: formatDuration(override) }, 'ca: workload certificate lifetime forced by --dev-workload-ttl (testing only); the Mesh\'s certificates.workloadTTL is ignored');
  }

  return {
    ca,
    trustDomain: inner.trustDomain,
    bundlePem: () => inner.bundlePem(),
    replicated: opts.replicated === true,
    workloadTtl,
    async issueForToken(token, csrPem) {
      const { ms: ttlMs } = await workloadTtl();
      const svid = await inner.issueForToken(token, csrPem, { ttlMs });
      return { ...svid, trustBundlePem: inner.bundlePem() };
    },
    onBundleChange(cb) {
      listeners.add(cb);
      return () => listeners.delete(cb);
    },
    stats: () => inner.stats(),
    close() {
      listeners.clear();
    },
  };
}
