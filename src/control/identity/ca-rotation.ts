/**
 * Root rotation as an operator drives it (`weft ca show`, `weft ca rotate`;
 * HTTP `GET /ca/status`, `POST /ca/rotate`): the CA's state in one view, and
 * the three steps of src/control/ca/bundle.ts with the checks that make each
 * safe to take now — or a WEFT_ERR_CONFLICT (409) saying why not and what to
 * do instead.
 *
 * Propagation is judged from the ADS streams of this control plane: a proxy
 * "holds" the bundle when the ROOTCA secret last sent to it is the current
 * bundle and it ACKed that version. Standalone SDS streams (StreamSecrets) are
 * not visible here; they receive the bundle in the same push.
 */
import { X509Certificate } from 'node:crypto';
import { formatDuration } from '../../lib/duration.js';
import { WeftError } from '../../lib/errors.js';
import type { RetireResult } from '../ca/bundle.js';
import { CLOCK_SKEW_MS } from '../ca/root.js';
import type { CaService } from './ca-service.js';

export const ROTATE_STEPS = ['add', 'promote', 'retire'] as const;
export type RotateStep = (typeof ROTATE_STEPS)[number];

/** The part of the xDS server's status this reads (structurally the HTTP API's XdsStatusSource). */
export interface BundleHolders {
  listClients(): { nodeId: string; types: Partial<Record<string, { ackedVersion?: string; sentVersion?: string; subscribed: string[] }>> }[];
  configOf(nodeId: string): Partial<Record<string, Record<string, unknown>[]>> | undefined;
}

export interface CertificateSummary {
  subject: string;
  serialNumber: string;
  /** As `openssl x509 -fingerprint -sha256` prints it (upper-case hex, colons). */
  fingerprintSha256: string;
  notBefore: string;
  notAfter: string;
}

export interface RootSummary extends CertificateSummary {
  id: string;
  /** This root (or the intermediate under it) signs workload certificates. */
  signing: boolean;
  /** Leaves it signed may be valid until then (generated roots; absent when it signed none). */
  coveredUntil?: string;
}

/**
 * - `steady`: one root, which signs;
 * - `added`: a new root is trusted but the old one still signs (promote next);
 * - `promoted`: the new root signs, the old one is still trusted (retire next).
 */
export type RotationPhase = 'steady' | 'added' | 'promoted';

export interface Propagation {
  /** ADS clients that subscribe to the trust bundle. */
  clients: number;
  /** How many of them hold (ACKed) the current bundle. */
  current: number;
  /** Node ids of the others (at most 20). */
  pending: string[];
}

export interface CaStatus {
  trustDomain: string;
  source: 'generated' | 'supplied';
  /** Replicas share the store: rotation goes through new CA files, not this API. */
  replicated: boolean;
  phase: RotationPhase;
  roots: RootSummary[];
  /** The supplied intermediate that signs, when there is one. */
  intermediate?: CertificateSummary;
  workloadTtl: { ms: number; duration: string; source: 'override' | 'mesh' };
  certificates: { issuedTotal: number; live: number; earliestExpiry?: string };
  /** Absent when this control plane serves no xDS. */
  propagation?: Propagation;
  /** What to do next, in words. */
  next: string;
}

export interface RotateResult {
  step: RotateStep;
  /** What happened, in one line. */
  message: string;
  /** For `add`: the new root's id; for `promote`: the root that signs now. */
  root?: string;
  retired?: string[];
  status: CaStatus;
}

function summary(pem: string): CertificateSummary {
  const c = new X509Certificate(pem);
  return {
    subject: c.subject.replace(/\n/g, ', '),
    serialNumber: c.serialNumber,
    fingerprintSha256: c.fingerprint256,
    notBefore: new Date(c.validFrom).toISOString(),
    notAfter: new Date(c.validTo).toISOString(),
  };
}

export function rotationPhase(ca: CaService): RotationPhase {
  const m = ca.ca.material;
  const signing = m.roots.findIndex((r) => r.id === m.signer.rootId);
  if (signing < m.roots.length - 1) return 'added';
  if (signing > 0) return 'promoted';
  return 'steady';
}

/** Which ADS clients hold `bundle`: the ROOTCA last sent to them is it, and they ACKed that version. */
export function propagationOf(xds: BundleHolders, bundle: string): Propagation {
  const out: Propagation = { clients: 0, current: 0, pending: [] };
  for (const c of xds.listClients()) {
    const sds = c.types.SDS;
    if (sds === undefined || sds.subscribed.length === 0) continue;
    out.clients++;
    const secret = xds.configOf(c.nodeId)?.SDS?.find((s) => s.name === 'ROOTCA');
    const acked = sds.sentVersion !== undefined && sds.ackedVersion === sds.sentVersion;
    if (acked && secret !== undefined && rootCaPem(secret) === bundle) out.current++;
    else if (out.pending.length < 20) out.pending.push(c.nodeId);
  }
  return out;
}

function rootCaPem(secret: Record<string, unknown>): string {
  const raw = (secret.validation_context as { trusted_ca?: { inline_bytes?: Uint8Array | string } } | undefined)?.trusted_ca?.inline_bytes;
  if (raw === undefined) return '';
  return typeof raw === 'string' ? raw : Buffer.from(raw).toString('utf8');
}

export async function caStatus(ca: CaService, xds: BundleHolders | undefined): Promise<CaStatus> {
  const m = ca.ca.material;
  const stats = ca.stats();
  const ttl = await ca.workloadTtl();
  const phase = rotationPhase(ca);
  const status: CaStatus = {
    trustDomain: ca.trustDomain,
    source: m.source,
    replicated: ca.replicated,
    phase,
    roots: m.roots.map((r) => {
      const s: RootSummary = { id: r.id, ...summary(r.certPem), signing: r.id === m.signer.rootId };
      if (r.coveredUntil !== undefined) s.coveredUntil = new Date(r.coveredUntil).toISOString();
      return s;
    }),
    workloadTtl: { ms: ttl.ms, duration: formatDuration(ttl.ms), source: ttl.source },
    certificates: {
      issuedTotal: stats.issuedTotal,
      live: stats.liveCertificates,
      ...(stats.soonestExpiry !== undefined ? { earliestExpiry: stats.soonestExpiry.toISOString() } : {}),
    },
    next: '',
  };
  if (m.signer.chainTailPem.length > 0) status.intermediate = summary(m.signer.certPem);
  if (xds !== undefined) status.propagation = propagationOf(xds, ca.bundlePem());
  status.next = nextStep(ca, status);
  return status;
}

function nextStep(ca: CaService, s: CaStatus): string {
  if (s.source === 'supplied') return 'the root is supplied as files: rotate it by supplying new files';
  if (s.replicated) return 'replicas share the store: rotate by giving every replica the same new --ca-cert/--ca-key files (docs/ha.md)';
  switch (s.phase) {
    case 'steady':
      return 'nothing to do; "rotate add" starts a rotation';
    case 'added': {
      const p = s.propagation;
      const held = p === undefined ? '' : ` (${p.current} of ${p.clients} proxies hold it)`;
      return `"rotate promote" once every proxy holds the new bundle${held}`;
    }
    case 'promoted': {
      const until = retireBound(ca);
      return until <= ca.ca.material.now()
        ? '"rotate retire": no certificate of the old root can still be valid'
        : `"rotate retire" after ${new Date(until).toISOString()}, when every certificate of the old root has expired`;
    }
  }
}

/** The instant every leaf of the roots older than the signer has expired (bundle.ts retires on the same bound). */
function retireBound(ca: CaService): number {
  const m = ca.ca.material;
  const signing = m.roots.findIndex((r) => r.id === m.signer.rootId);
  return Math.max(0, ...m.roots.slice(0, Math.max(signing, 0)).map((r) => (r.coveredUntil ?? 0) + CLOCK_SKEW_MS));
}

/** Refusals every step shares: what this API cannot rotate. */
function requireRotatable(ca: CaService, step: RotateStep): void {
  if (ca.ca.material.source === 'supplied') {
    throw new WeftError('WEFT_ERR_CONFLICT', `cannot ${step}: this control plane uses supplied CA files (--ca-cert/--ca-key); rotate the root by supplying new files`);
  }
  if (ca.replicated) {
    throw new WeftError('WEFT_ERR_CONFLICT', `cannot ${step}: replicas share this store (etcd) and each has its own CA directory, so a rotation here would not reach the others; give every replica the same new --ca-cert/--ca-key files instead (docs/ha.md)`);
  }
}

/**
 * One rotation step. The CaService's root methods push every bundle change to
 * proxies (SDS ROOTCA and ADS); this adds the checks an operator needs.
 */
export async function rotate(ca: CaService, xds: BundleHolders | undefined, step: RotateStep, opts: { force?: boolean } = {}): Promise<RotateResult> {
  requireRotatable(ca, step);
  const force = opts.force === true;
  switch (step) {
    case 'add': {
      if (rotationPhase(ca) !== 'steady') {
        throw new WeftError('WEFT_ERR_CONFLICT', `cannot add a root: a rotation is in progress (${rotationPhase(ca) === 'added' ? 'promote the new root, then retire the old one' : 'retire the old root'} first)`);
      }
      const root = await ca.ca.rotateRoot();
      return { step, root: root.id, message: `root ${root.id} joined the trust bundle; ${ca.ca.material.signer.rootId} still signs. Promote it once every proxy holds the new bundle`, status: await caStatus(ca, xds) };
    }
    case 'promote': {
      const phase = rotationPhase(ca);
      if (phase !== 'added') {
        throw new WeftError('WEFT_ERR_CONFLICT', phase === 'steady'
          ? 'cannot promote: no new root in the bundle; "rotate add" first'
          : 'cannot promote: the newest root already signs; "rotate retire" is the next step');
      }
      if (xds !== undefined && !force) {
        const p = propagationOf(xds, ca.bundlePem());
        if (p.current < p.clients) {
          throw new WeftError('WEFT_ERR_CONFLICT', `cannot promote yet: ${p.clients - p.current} of ${p.clients} proxies do not hold the new trust bundle (${p.pending.join(', ')}); wait for them, or force`);
        }
      }
      await ca.ca.promoteRoot();
      const signer = ca.ca.material.signer.rootId;
      return { step, root: signer, message: `root ${signer} signs workload certificates now; retire the old root once its certificates have expired`, status: await caStatus(ca, xds) };
    }
    case 'retire': {
      const phase = rotationPhase(ca);
      if (phase !== 'promoted') {
        throw new WeftError('WEFT_ERR_CONFLICT', phase === 'steady'
          ? 'cannot retire: only the signing root is trusted'
          : 'cannot retire: the new root has not been promoted yet; "rotate promote" first');
      }
      const r: RetireResult = await ca.ca.retireRoot({ force });
      if (r.retired.length === 0) {
        const w = r.waiting.map((x) => `${x.id} until ${x.until.toISOString()}`).join(', ');
        throw new WeftError('WEFT_ERR_CONFLICT', `cannot retire yet: certificates signed by the old root may still be valid (${w}); retry then, or force (proxies holding them fail until they renew)`);
      }
      return { step, retired: r.retired, message: `retired ${r.retired.join(', ')} from the trust bundle${force ? ' (forced)' : ''}; its key is deleted`, status: await caStatus(ca, xds) };
    }
  }
}
