import type { Etcd3, IKeyValue, IWatchResponse, Watcher } from 'etcd3';
import type { Resource } from '../../api/types.js';
import { WeftError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import type { Watch, WatchEvent, WatchOptions } from '../types.js';
import { decodeObject } from './codec.js';
import { matchesFilter, parseObjectKey, rangePrefix } from './keys.js';

export interface EtcdWatchOptions extends WatchOptions {
  /**
   * Told once when the watch ends for good: WEFT_ERR_GONE when etcd has
   * compacted the revisions it still had to deliver (list again and watch from
   * the list's revision), WEFT_ERR_STORE for anything else. Nothing is
   * delivered after it. Without it the failure is only logged.
   *
   * etcd reports compaction asynchronously, so unlike the file store this
   * cannot always be a synchronous throw from watch().
   */
  onError?: (err: WeftError) => void;
}

/** What a watch needs from its store. */
export interface WatchContext {
  client: Etcd3;
  prefix: string;
  log: Logger;
  /** True when revision `rev` has been compacted away; rejects when etcd cannot answer. */
  isCompacted(rev: number): Promise<boolean>;
  /** A watch learned that starting at `rev` is impossible. */
  noteGone(rev: number): void;
  /** A header revision was seen. */
  observe(rev: number): void;
  onWatcherError(err: unknown): void;
  detach(w: EtcdWatch): void;
}

type Item = { event: WatchEvent } | { error: WeftError };

/**
 * One etcd watch on the narrowest prefix covering the filter. etcd3 re-opens
 * the stream after a connection or member failure; this class makes sure the
 * re-opened watch starts right after the last revision actually received,
 * and turns etcd's events into WatchEvents delivered one at a time, in order,
 * outside etcd3's event loop.
 */
export class EtcdWatch implements Watch {
  /** The first revision not received yet: where a re-opened watch must start. */
  private next: number;
  private readonly watcher: Watcher;
  /** etcd3 has dropped the watcher (canceled by the server); do not cancel it again. */
  private ended = false;
  private closed = false;
  private queue: Item[] = [];
  private scheduled = false;
  private cancelling: Promise<void> | undefined;

  constructor(
    private readonly ctx: WatchContext,
    private readonly opts: EtcdWatchOptions,
    startRevision: number,
    private readonly onEvent: (e: WatchEvent) => void,
  ) {
    this.next = startRevision;
    this.watcher = ctx.client.watch().prefix(rangePrefix(ctx.prefix, opts)).withPreviousKV().startRevision(String(startRevision)).watcher();
    // Listeners are attached before any I/O can happen, so nothing is missed.
    // etcd3's own handlers run first (registered in its constructor).
    this.watcher.on('data', (res: IWatchResponse) => this.guard(() => this.onData(res)));
    this.watcher.on('connected', (res: IWatchResponse) =>
      this.guard(() => {
        this.ctx.observe(Number(res.header.revision));
        this.ctx.log.debug({ memberId: res.header.member_id, fromRevision: this.next }, 'etcd watch connected');
        this.pinStartRevision();
      }),
    );
    this.watcher.on('disconnected', (err: unknown) =>
      this.guard(() => {
        if (this.closed) return;
        this.ctx.log.info({ err: errText(err), resumeAt: this.next }, 'etcd watch disconnected; it resumes from the next revision not yet received');
      }),
    );
    this.watcher.on('error', (err: unknown) => this.guard(() => this.onCanceled(err)));
  }

  /** Revision a resumed watch would start at (for tests and diagnostics). */
  get resumeRevision(): number {
    return this.next;
  }

  close(): void {
    void this.stop();
  }

  /** Close and wait until etcd has let go of the watcher. */
  stop(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.queue = [];
      this.ctx.detach(this);
      this.cancelling = this.ended
        ? Promise.resolve()
        : this.watcher.cancel().catch((err: unknown) => {
            this.ctx.log.debug({ err: errText(err) }, 'cancelling an etcd watch failed');
          });
    }
    return this.cancelling ?? Promise.resolve();
  }

  private onData(res: IWatchResponse): void {
    if (this.closed) return;
    this.ctx.observe(Number(res.header.revision));
    const events = res.events ?? [];
    for (const ev of events) {
      const rev = Number(ev.kv.mod_revision);
      const e = this.translate(String(ev.type).toUpperCase() === 'DELETE' ? 'DELETE' : 'PUT', ev.kv, ev.prev_kv);
      if (e !== undefined) this.push({ event: e });
      if (rev >= this.next) this.next = rev + 1;
    }
    // A response without events is a progress notification: everything up to
    // its header revision has been sent. A response with events does not say
    // that (a catching-up watcher gets the store's current revision in every
    // batch), so only the events move the resume point.
    if (events.length === 0 && !res.created) {
      const rev = Number(res.header.revision);
      if (rev >= this.next) this.next = rev + 1;
    }
    this.pinStartRevision();
  }

  private translate(type: 'PUT' | 'DELETE', kv: IKeyValue, prev: IKeyValue | undefined): WatchEvent | undefined {
    const etcdKey = kv.key.toString('utf8');
    const key = parseObjectKey(this.ctx.prefix, etcdKey);
    if (key === undefined || !matchesFilter(key, this.opts)) return undefined;
    const revision = Number(kv.mod_revision);
    if (type === 'PUT') {
      const d = decodeObject(key, kv.value, kv.mod_revision);
      if (!d.ok) {
        this.ctx.log.warn({ key: etcdKey, revision, reason: d.reason }, 'skipping an etcd value that is not a Weft object');
        return undefined;
      }
      return { type: kv.create_revision === kv.mod_revision ? 'ADDED' : 'MODIFIED', object: d.object, revision };
    }
    // DELETED carries the last state, stamped with the deleting revision.
    const d = prev === undefined ? undefined : decodeObject(key, prev.value, kv.mod_revision);
    let object: Resource;
    if (d?.ok === true) {
      object = d.object;
    } else {
      // etcd could not supply the previous value (compacted); the key still
      // says what was deleted.
      this.ctx.log.warn({ key: etcdKey, revision }, 'etcd sent a delete without the previous value; the DELETED event carries only the key');
      object = { apiVersion: '', kind: key.kind, metadata: { name: key.name, resourceVersion: String(revision) }, spec: {} };
      if (key.namespace !== '') object.metadata.namespace = key.namespace;
    }
    return { type: 'DELETED', object, revision };
  }

  /**
   * etcd3 re-sends its request when it reconnects, with a start revision it
   * sets from response headers; a header revision can run ahead of the events
   * received (a catching-up watcher), so a reconnect at the wrong moment would
   * skip events. Keep the request at the first revision not received.
   */
  private pinStartRevision(): void {
    (this.watcher as unknown as { request: { start_revision?: number | string } }).request.start_revision = this.next;
  }

  /** The server canceled the watch: find out whether the history is gone. */
  private onCanceled(err: unknown): void {
    this.ended = true;
    if (this.closed) return;
    void this.classifyCancel(err);
  }

  private async classifyCancel(err: unknown): Promise<void> {
    let delay = 200;
    for (;;) {
      if (this.closed) return;
      try {
        const compacted = await this.ctx.isCompacted(this.next);
        if (compacted) {
          this.ctx.noteGone(this.next);
          this.fail(
            new WeftError(
              'WEFT_ERR_GONE',
              `etcd has compacted revision ${this.next - 1} and earlier: changes after it can no longer be replayed; list again and watch from the list's revision`,
            ),
          );
        } else {
          this.fail(new WeftError('WEFT_ERR_STORE', `etcd canceled the watch: ${errText(err)}`, { cause: err }));
        }
        return;
      } catch (probeErr) {
        this.ctx.log.warn({ err: errText(probeErr) }, 'cannot reach etcd to learn why a watch was canceled; retrying');
        await new Promise((r) => setTimeout(r, delay).unref());
        delay = Math.min(delay * 2, 5000);
      }
    }
  }

  private fail(err: WeftError): void {
    if (this.closed) return;
    this.ctx.log.error({ err: err.message, code: err.code }, 'etcd watch ended; it delivers nothing more');
    this.push({ error: err });
  }

  private push(item: Item): void {
    if (this.closed) return;
    this.queue.push(item);
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(() => this.drain());
    }
  }

  private drain(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    for (const item of batch) {
      if (this.closed) return;
      if ('error' in item) {
        // After the error the watch is over: release it, then tell the caller.
        void this.stop();
        this.call(() => this.opts.onError?.(item.error));
        return;
      }
      this.call(() => this.onEvent(item.event));
    }
  }

  /** Run a caller's callback: what it throws or rejects never reaches etcd3 or the store. */
  private call(f: () => unknown): void {
    try {
      const r = f();
      if (isThenable(r)) r.then(undefined, (e: unknown) => this.ctx.onWatcherError(e));
    } catch (e) {
      this.ctx.onWatcherError(e);
    }
  }

  /** etcd3 rethrows a listener's exception asynchronously, which would crash the process. */
  private guard(f: () => void): void {
    try {
      f();
    } catch (e) {
      this.ctx.log.error({ err: errText(e) }, 'internal error handling an etcd watch response');
    }
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

export function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
