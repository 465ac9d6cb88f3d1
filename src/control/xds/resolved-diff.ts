import type { Resolved, SnapshotEntry } from './snapshot.js';

/**
 * What differs between two resolutions of one subscription (resolveSubscription):
 * the entries of `next` whose hash `prev` does not have, and the names `prev`
 * has that `next` does not.
 */
export interface ResolvedDiff {
  changed: SnapshotEntry[];
  removed: string[];
}

const EMPTY_DIFF: ResolvedDiff = { changed: [], removed: [] };

/** Name → hash of a resolution's entries, computed once per Resolved (they are immutable). */
const hashMaps = new WeakMap<Resolved, Map<string, string>>();

export function hashesOf(r: Resolved): ReadonlyMap<string, string> {
  let m = hashMaps.get(r);
  if (m === undefined) {
    m = new Map();
    for (const e of r.entries) m.set(e.name, e.hash);
    hashMaps.set(r, m);
  }
  return m;
}

/**
 * By `prev`, then `next`: on a new snapshot every stream that was in sync with
 * `prev` asks for the same pair, so the comparison of the whole subscription
 * (e.g. 500 EDS names) is done once per (view, type, subscription), not once
 * per stream. Streams that are behind ask with another `prev` and get (and
 * share) their own. Both levels are weak: a stream holding an old resolution
 * does not keep the later ones alive.
 */
const diffs = new WeakMap<Resolved, WeakMap<Resolved, ResolvedDiff>>();

export function diffResolved(prev: Resolved, next: Resolved): ResolvedDiff {
  if (prev === next) return EMPTY_DIFF;
  let byNext = diffs.get(prev);
  const hit = byNext?.get(next);
  if (hit !== undefined) return hit;
  const before = hashesOf(prev);
  const changed = next.entries.filter((e) => before.get(e.name) !== e.hash);
  const removed: string[] = [];
  if (prev.entries.length > 0) {
    const after = hashesOf(next);
    for (const e of prev.entries) if (!after.has(e.name)) removed.push(e.name);
  }
  const diff: ResolvedDiff = changed.length === 0 && removed.length === 0 ? EMPTY_DIFF : { changed, removed };
  if (byNext === undefined) {
    byNext = new WeakMap();
    diffs.set(prev, byNext);
  }
  byNext.set(next, diff);
  return diff;
}
