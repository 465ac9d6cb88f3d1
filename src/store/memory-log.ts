import { keyString, type Resource, type ResourceKey } from '../api/types.js';
import { WeftError } from '../lib/errors.js';
import type { ListOptions, Watch, WatchEvent, WatchEventType, WatchOptions } from './types.js';

export const DEFAULT_HISTORY_SIZE = 10_000;

export interface MemoryLogOptions {
  /** Events kept for watch({fromRevision}); older revisions answer WEFT_ERR_GONE. */
  historySize?: number;
  /** Told about a watcher callback that threw or rejected; the writer never sees it. */
  onWatcherError?: (err: unknown) => void;
}

/**
 * The in-memory half every backend shares: the current objects, a bounded ring
 * of recent events for resuming watches, and fan-out to watchers. It holds no
 * I/O; a backend makes a change durable first and then calls `commit`.
 *
 * Objects held here are never mutated (a change replaces the object), so the
 * ring and the index may share them; callers receive clones.
 */
export class MemoryLog {
  private readonly byKind = new Map<string, Map<string, Resource>>();
  private readonly history: EventRing;
  private readonly watchers = new Set<Watcher>();
  private readonly onWatcherError: (err: unknown) => void;
  private rev = 0;
  /** Highest revision whose event is no longer in the ring. */
  private compactedThrough = 0;

  constructor(opts: MemoryLogOptions = {}) {
    this.history = new EventRing(opts.historySize ?? DEFAULT_HISTORY_SIZE);
    this.onWatcherError = opts.onWatcherError ?? (() => {});
  }

  get revision(): number {
    return this.rev;
  }

  /**
   * Replace the state with a loaded snapshot. Events before `revision` are
   * unknown, so a watch from an earlier revision must answer GONE.
   */
  reset(objects: Iterable<Resource>, revision: number): void {
    this.byKind.clear();
    this.history.clear();
    for (const o of objects) this.index(o);
    this.rev = revision;
    this.compactedThrough = revision;
  }

  /** The held object itself: do not mutate it. */
  get(key: ResourceKey): Resource | undefined {
    return this.byKind.get(key.kind)?.get(keyString(key));
  }

  /** Held objects sorted by kind, namespace, name: do not mutate them. */
  list(opts: ListOptions = {}): Resource[] {
    const maps = opts.kind === undefined ? [...this.byKind.values()] : [this.byKind.get(opts.kind) ?? new Map<string, Resource>()];
    const out: Resource[] = [];
    for (const m of maps) {
      for (const o of m.values()) if (matches(o, opts)) out.push(o);
    }
    return out.sort(compareResources);
  }

  /**
   * Record a durable change. `revision` must exceed every earlier one; for
   * DELETED, `object` is the last state stamped with the deleting revision.
   */
  commit(type: WatchEventType, object: Resource, revision: number): void {
    if (revision <= this.rev) {
      throw new WeftError('WEFT_ERR_INTERNAL', `store revision must increase: ${revision} after ${this.rev}`);
    }
    if (type === 'DELETED') this.unindex(object);
    else this.index(object);
    this.rev = revision;
    const event: WatchEvent = { type, object, revision };
    const evicted = this.history.push(event);
    if (evicted !== undefined) this.compactedThrough = evicted.revision;
    for (const w of this.watchers) w.offer(event);
  }

  watch(opts: WatchOptions, onEvent: (e: WatchEvent) => void): Watch {
    const from = opts.fromRevision;
    if (from !== undefined && from < this.compactedThrough) {
      throw new WeftError(
        'WEFT_ERR_GONE',
        `revision ${from} is too old: changes are kept only after revision ${this.compactedThrough}; list again and watch from the list's revision`,
      );
    }
    const w = new Watcher(opts, onEvent, this.onWatcherError, () => this.watchers.delete(w));
    // Replay and registration happen in one synchronous step, so no commit can
    // fall between them: nothing is missed or delivered twice.
    if (from !== undefined) for (const e of this.history.after(from)) w.offer(e);
    this.watchers.add(w);
    return w;
  }

  closeWatchers(): void {
    for (const w of [...this.watchers]) w.close();
  }

  private index(o: Resource): void {
    let m = this.byKind.get(o.kind);
    if (m === undefined) {
      m = new Map();
      this.byKind.set(o.kind, m);
    }
    m.set(keyString(keyOfResource(o)), o);
  }

  private unindex(o: Resource): void {
    this.byKind.get(o.kind)?.delete(keyString(keyOfResource(o)));
  }
}

function keyOfResource(o: Resource): ResourceKey {
  return { kind: o.kind, namespace: o.metadata.namespace ?? '', name: o.metadata.name };
}

function matches(o: Resource, f: ListOptions): boolean {
  if (f.kind !== undefined && o.kind !== f.kind) return false;
  if (f.namespace !== undefined && f.namespace !== '' && (o.metadata.namespace ?? '') !== f.namespace) return false;
  return true;
}

export function compareResources(a: Resource, b: Resource): number {
  return cmp(a.kind, b.kind) || cmp(a.metadata.namespace ?? '', b.metadata.namespace ?? '') || cmp(a.metadata.name, b.metadata.name);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * One subscriber. Events are queued and delivered on a microtask, so a slow
 * or throwing callback runs outside the writer's critical section, and a
 * callback may safely use the Watch handle that watch() has not returned yet.
 */
class Watcher implements Watch {
  private queue: WatchEvent[] = [];
  private scheduled = false;
  private closed = false;

  constructor(
    private readonly filter: ListOptions,
    private readonly onEvent: (e: WatchEvent) => void,
    private readonly onError: (err: unknown) => void,
    private readonly detach: () => void,
  ) {}

  offer(e: WatchEvent): void {
    if (this.closed || !matches(e.object, this.filter)) return;
    this.queue.push(e);
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(() => this.drain());
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    this.detach();
  }

  private drain(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    for (const e of batch) {
      if (this.closed) return;
      try {
        // A clone per delivery: a watcher that edits its event cannot corrupt
        // the store or what other watchers see.
        const r: unknown = this.onEvent({ type: e.type, revision: e.revision, object: structuredClone(e.object) });
        // An async callback's rejection would otherwise surface as an
        // unhandled rejection and take the whole process down.
        if (isThenable(r)) r.then(undefined, this.onError);
      } catch (err) {
        this.onError(err);
      }
    }
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

/** Fixed-capacity ring of events in increasing revision order. */
class EventRing {
  private readonly buf: (WatchEvent | undefined)[];
  private start = 0;
  private size = 0;

  constructor(private readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new WeftError('WEFT_ERR_INTERNAL', `watch history size must be a positive integer, got ${capacity}`);
    }
    this.buf = new Array<WatchEvent | undefined>(capacity);
  }

  /** Returns the event pushed out to make room, if any. */
  push(e: WatchEvent): WatchEvent | undefined {
    if (this.size < this.capacity) {
      this.buf[(this.start + this.size) % this.capacity] = e;
      this.size++;
      return undefined;
    }
    const evicted = this.buf[this.start];
    this.buf[this.start] = e;
    this.start = (this.start + 1) % this.capacity;
    return evicted;
  }

  clear(): void {
    this.buf.fill(undefined);
    this.start = 0;
    this.size = 0;
  }

  /** Events with revision > rev, oldest first. */
  *after(rev: number): Generator<WatchEvent> {
    // Binary search: revisions increase along the ring.
    let lo = 0;
    let hi = this.size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.at(mid).revision <= rev) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.size; i++) yield this.at(i);
  }

  private at(i: number): WatchEvent {
    const e = this.buf[(this.start + i) % this.capacity];
    if (e === undefined) throw new WeftError('WEFT_ERR_INTERNAL', 'event ring slot is empty');
    return e;
  }
}
