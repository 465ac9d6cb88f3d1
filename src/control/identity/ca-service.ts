import { DEFAULT_MESH_NAME } from '../../api/mesh/mesh.js';
import { parseDuration } from '../../lib/duration.js';
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
  close(): void;
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
}

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
  const inner = await createCertificateAuthority(opts.dataDir, {
    trustDomain: initial.trustDomain,
    ...(opts.supplied ? { supplied: opts.supplied } : {}),
    ...(opts.joinTokenKey ? { joinTokenKey: opts.joinTokenKey } : {}),
    ...(opts.now ? { now: opts.now } : {}),
    workloadTtlMs: initial.workloadTtlMs,
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
  opts.log?.info({ trustDomain: inner.trustDomain, source: inner.material.source, roots: inner.material.roots.length }, 'ca: ready');

  return {
    ca,
    trustDomain: inner.trustDomain,
    bundlePem: () => inner.bundlePem(),
    async issueForToken(token, csrPem) {
      let ttlMs = initial.workloadTtlMs;
      try {
        ttlMs = (await readMeshSettings(opts.store)).workloadTtlMs;
      } catch (err) {
        opts.log?.warn({ err }, 'ca: cannot read the Mesh; using the workload TTL read at start');
      }
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
