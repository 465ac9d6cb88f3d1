import { join } from 'node:path';
import { WeftError } from '../../lib/errors.js';
import { parseCertificate } from '../../lib/identity/cert.js';
import { importPrivateKeyPem } from '../../lib/identity/keys.js';
import { writeFileAtomic } from './fs.js';
import {
  CLOCK_SKEW_MS, generateRoot, removeIfExists, signerFor, writeBundleFile,
  type CaMaterial, type TrustedRoot,
} from './root.js';
import { writeRootState, type RootState } from './state.js';

/**
 * The trust bundle and root rotation, in three steps an operator (or a timer)
 * takes with time between them, so no workload ever meets a certificate it
 * cannot verify:
 *
 * 1. rotateRoot: a new root joins the bundle; the old one still signs.
 *    Workloads receive the bundle (old + new) with their next SDS push.
 * 2. promoteRoot: once every workload holds the new bundle, the new root
 *    signs. Leaves of the old root still verify: it is still in the bundle.
 * 3. retireRoot: once every leaf of the old root has expired, it leaves the
 *    bundle and its key is deleted.
 *
 * Each step writes key and certificate files first, then commits by replacing
 * roots.json atomically; bundle.pem is rewritten from it afterwards.
 */

/** PEM of every trusted root, oldest first: what workloads verify peers with. */
export function bundlePem(ca: CaMaterial): string {
  return ca.roots.map((r) => r.certPem).join('');
}

/** Leaves carry a notAfter up to this far past the recorded coverage before roots.json is rewritten again. */
const COVERAGE_SLACK_MS = 3_600_000;

function stateOf(ca: CaMaterial): RootState {
  return {
    version: 1,
    roots: ca.roots.map((r) => {
      const rec: RootState['roots'][number] = {
        id: r.id,
        generation: r.generation,
        cert: certFileOf(r),
        key: keyFileOf(r),
        createdAt: new Date(r.createdAt).toISOString(),
      };
      if (r.coveredUntil !== undefined) rec.coveredUntil = new Date(r.coveredUntil).toISOString();
      return rec;
    }),
    signing: ca.signer.rootId,
  };
}

function certFileOf(r: Pick<TrustedRoot, 'id'>): string {
  return r.id === 'root' ? 'root-cert.pem' : `${r.id}-cert.pem`;
}
function keyFileOf(r: Pick<TrustedRoot, 'id'>): string {
  return r.id === 'root' ? 'root-key.pem' : `${r.id}-key.pem`;
}

function requireGenerated(ca: CaMaterial, step: string): void {
  if (ca.source !== 'generated') {
    throw new WeftError('WEFT_ERR_CONFLICT', `cannot ${step}: the CA uses supplied certificate files; rotate them by supplying new files`);
  }
}

async function commit(ca: CaMaterial, roots: TrustedRoot[], signingId: string): Promise<void> {
  const next: CaMaterial = { ...ca, roots, signer: await signerFor(roots, signingId) };
  await writeRootState(ca.dir, stateOf(next));
  ca.roots = next.roots;
  ca.signer = next.signer;
  await writeBundleFile(ca.dir, ca.roots);
}

/** Step 1: make a new root and trust it beside the current one, which keeps signing. */
export async function rotateRoot(ca: CaMaterial, opts: { rootTtlMs?: number } = {}): Promise<TrustedRoot> {
  requireGenerated(ca, 'rotate the root');
  return ca.exclusive(async () => {
    if (ca.roots.length > 1) {
      throw new WeftError('WEFT_ERR_CONFLICT', 'a root rotation is already in progress: promote the new root and retire the old one first');
    }
    const now = ca.now();
    const generation = Math.max(...ca.roots.map((r) => r.generation)) + 1;
    const id = `root-g${generation}`;
    const made = await generateRoot(ca.trustDomain, generation, now, opts.rootTtlMs);
    // Files first: until roots.json names them they are strays, harmless after a crash.
    await writeFileAtomic(join(ca.dir, keyFileOf({ id })), made.keyPem);
    await writeFileAtomic(join(ca.dir, certFileOf({ id })), made.certPem);
    const root: TrustedRoot = {
      id,
      generation,
      cert: parseCertificate(made.certPem),
      certPem: made.certPem,
      key: await importPrivateKeyPem(made.keyPem),
      createdAt: now,
    };
    await commit(ca, [...ca.roots, root], ca.signer.rootId);
    return root;
  });
}

/** Step 2: the newest trusted root signs from now on. Call once workloads hold the new bundle. */
export async function promoteRoot(ca: CaMaterial): Promise<void> {
  requireGenerated(ca, 'promote a root');
  await ca.exclusive(async () => {
    const newest = ca.roots[ca.roots.length - 1] as TrustedRoot;
    if (newest.id === ca.signer.rootId) throw new WeftError('WEFT_ERR_CONFLICT', 'no new root to promote: rotate the root first');
    await commit(ca, ca.roots, newest.id);
  });
}

export interface RetireResult {
  retired: string[];
  /** Roots kept because leaves they signed are still valid, with the instant they may go. */
  waiting: { id: string; until: Date }[];
}

/**
 * Step 3: drop every root that no longer signs and whose leaves have all
 * expired. `force` drops them regardless, breaking workloads that still hold
 * such leaves until they renew.
 */
export async function retireRoot(ca: CaMaterial, opts: { force?: boolean } = {}): Promise<RetireResult> {
  requireGenerated(ca, 'retire a root');
  return ca.exclusive(async () => {
    // Only roots older than the signer: a rotated root waiting for promotion must stay.
    const signing = ca.roots.findIndex((r) => r.id === ca.signer.rootId);
    const old = ca.roots.slice(0, Math.max(signing, 0));
    if (old.length === 0) {
      throw new WeftError('WEFT_ERR_CONFLICT', ca.roots.length > 1
        ? 'no root to retire: the new root has not been promoted yet'
        : 'no root to retire: only the signing root is trusted');
    }
    const now = ca.now();
    const result: RetireResult = { retired: [], waiting: [] };
    const gone = new Set<string>();
    for (const r of old) {
      const until = (r.coveredUntil ?? 0) + CLOCK_SKEW_MS;
      if (opts.force === true || until <= now) gone.add(r.id);
      else result.waiting.push({ id: r.id, until: new Date(until) });
    }
    if (gone.size === 0) return result;
    await commit(ca, ca.roots.filter((r) => !gone.has(r.id)), ca.signer.rootId);
    for (const id of gone) {
      // The key first: a retired root must never sign again.
      await removeIfExists(join(ca.dir, keyFileOf({ id })));
      await removeIfExists(join(ca.dir, certFileOf({ id })));
      result.retired.push(id);
    }
    return result;
  });
}

/**
 * Record, before a leaf is handed out, that the signing root has a leaf valid
 * until `notAfter`, so retireRoot knows when the root may leave the bundle.
 * Writes roots.json at most about once an hour: coverage is recorded with slack.
 */
export async function recordCoverage(ca: CaMaterial, rootId: string, notAfter: number): Promise<void> {
  if (ca.source !== 'generated') return;
  const covered = ca.roots.find((r) => r.id === rootId)?.coveredUntil;
  if (covered !== undefined && covered >= notAfter) return;
  await ca.exclusive(async () => {
    const root = ca.roots.find((r) => r.id === rootId);
    if (root === undefined) throw new WeftError('WEFT_ERR_CONFLICT', `root ${rootId} was retired while signing`);
    if (root.coveredUntil !== undefined && root.coveredUntil >= notAfter) return;
    const previous = root.coveredUntil;
    root.coveredUntil = notAfter + COVERAGE_SLACK_MS;
    try {
      await writeRootState(ca.dir, stateOf(ca));
    } catch (e) {
      if (previous === undefined) delete root.coveredUntil;
      else root.coveredUntil = previous;
      throw new WeftError('WEFT_ERR_STORE', `cannot record certificate coverage in ${ca.dir}`, { cause: e });
    }
  });
}
