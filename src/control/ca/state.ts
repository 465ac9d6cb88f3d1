import { join } from 'node:path';
import { WeftError } from '../../lib/errors.js';
import { readIfExists, writeFileAtomic } from './fs.js';

/**
 * `ca/roots.json`: which generated roots are trusted and which one signs. It is
 * the commit point of every change: key and certificate files are written
 * first, then this file is replaced atomically, then `bundle.pem` (derived).
 * A crash before the rename leaves stray files that nothing refers to.
 */
export const STATE_FILE = 'roots.json';

export interface RootRecord {
  id: string;
  /** 1 for the first root, then 2, 3… (the subject names it: `… G2`). */
  generation: number;
  /** File names inside the ca directory. */
  cert: string;
  key: string;
  createdAt: string;
  /** Every leaf this root has signed expires by this instant (ISO); absent when it signed none. */
  coveredUntil?: string;
}

export interface RootState {
  version: 1;
  /** Trusted roots, oldest first: the trust bundle. */
  roots: RootRecord[];
  /** id of the root that signs workload certificates. */
  signing: string;
}

export async function readRootState(caDir: string): Promise<RootState | undefined> {
  const path = join(caDir, STATE_FILE);
  const text = await readIfExists(path);
  if (text === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new WeftError('WEFT_ERR_STORE', `${path} is not valid JSON`, { cause: e });
  }
  const problem = stateProblem(parsed);
  if (problem !== undefined) throw new WeftError('WEFT_ERR_STORE', `${path}: ${problem}`);
  return parsed as RootState;
}

export async function writeRootState(caDir: string, state: RootState): Promise<void> {
  await writeFileAtomic(join(caDir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);
}

function stateProblem(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null) return 'not an object';
  const s = v as Partial<RootState>;
  if (s.version !== 1) return `unknown version ${JSON.stringify(s.version)}`;
  if (!Array.isArray(s.roots) || s.roots.length === 0) return 'roots must be a non-empty list';
  for (const [i, r] of s.roots.entries()) {
    const rec = r as Partial<RootRecord> | null;
    if (typeof rec !== 'object' || rec === null) return `roots[${i}] is not an object`;
    for (const f of ['id', 'cert', 'key', 'createdAt'] as const) {
      if (typeof rec[f] !== 'string' || rec[f] === '') return `roots[${i}].${f} must be a non-empty string`;
    }
    // File names only: the state must not point outside the ca directory.
    if (/[/\\]/.test(rec.cert ?? '') || /[/\\]/.test(rec.key ?? '')) return `roots[${i}] names a file outside the ca directory`;
    if (typeof rec.generation !== 'number' || !Number.isInteger(rec.generation) || rec.generation < 1) return `roots[${i}].generation must be a positive integer`;
    if (rec.coveredUntil !== undefined && Number.isNaN(Date.parse(rec.coveredUntil))) return `roots[${i}].coveredUntil is not a date`;
  }
  if (typeof s.signing !== 'string' || !s.roots.some((r) => r.id === s.signing)) return 'signing must name one of the roots';
  return undefined;
}
