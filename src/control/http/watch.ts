import type { KindDescriptor } from '../../api/descriptor.js';
import type { Resource } from '../../api/types.js';
import type { Watch, WatchEvent } from '../../store/types.js';
import type { ApiContext, ApiRequest } from './context.js';
import { parseLabelSelector } from './label-selector.js';
import { present, revisionParam } from './objects.js';
import { listNamespace } from './resources.js';

export type WatchLine =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: Resource }
  | { type: 'BOOKMARK'; object: { metadata: { resourceVersion: string } } };

export interface WatchOptions {
  /** How often an idle stream gets a BOOKMARK line. */
  bookmarkIntervalMs: number;
  /**
   * A client that reads slower than changes arrive is cut off once this much is
   * queued for it; it re-watches from its last resourceVersion. Memory stays bounded.
   */
  maxBufferedBytes: number;
}

/** The open streams of one server, so shutdown can end them. */
export class WatchRegistry {
  private readonly open = new Set<() => void>();

  get size(): number {
    return this.open.size;
  }

  add(end: () => void): () => void {
    this.open.add(end);
    return () => {
      this.open.delete(end);
    };
  }

  /** Ends every stream (server shutdown). */
  endAll(): void {
    for (const end of [...this.open]) end();
  }
}

/**
 * GET ...?watch=true: an ndjson stream of changes. Without `resourceVersion` it
 * starts with the current objects as ADDED; with `resourceVersion=N` it replays
 * every change after N (410 when N is compacted away, before any byte of the
 * stream). BOOKMARK lines come after the initial events and then every
 * `bookmarkIntervalMs`. They carry the newest revision this stream has
 * delivered, never a newer store revision whose event may still be on its way,
 * so resuming from a bookmark cannot skip a change.
 */
export async function watchObjects(
  ctx: ApiContext,
  { req, res, query }: ApiRequest,
  route: { kind: KindDescriptor; namespace: string | undefined },
  streams: WatchRegistry,
  opts: WatchOptions,
): Promise<void> {
  const kind = route.kind;
  const namespace = listNamespace(route, query);
  const selector = parseLabelSelector(query.get('labelSelector') ?? '');
  const from = revisionParam(query, 'resourceVersion');

  let initial: Resource[] = [];
  let fromRevision: number;
  if (from === undefined) {
    const list = await ctx.store.list({ kind: kind.kind, namespace });
    initial = list.items;
    fromRevision = list.revision;
  } else {
    fromRevision = Number(from);
  }

  let delivered = fromRevision;
  let closed = false;
  // Events that arrive before the headers are out (a store may replay
  // synchronously inside watch()) wait here.
  let pending: WatchLine[] | undefined = [];
  const send = (line: WatchLine) => {
    if (closed) return;
    if (pending) {
      pending.push(line);
      return;
    }
    res.write(`${JSON.stringify(line)}\n`);
    if (res.writableLength > opts.maxBufferedBytes) {
      ctx.log.warn({ kind: kind.kind, namespace, buffered: res.writableLength }, 'watch client too slow; ending its stream');
      end();
    }
  };
  const onEvent = (e: WatchEvent) => {
    delivered = Math.max(delivered, e.revision);
    // Simple filtering: an object that stops matching just goes quiet (no DELETED).
    if (selector(e.object.metadata.labels)) send({ type: e.type, object: present(kind, e.object) });
  };

  // Throws WEFT_ERR_GONE for a compacted revision: the caller turns it into a 410
  // because nothing has been written yet.
  const watch: Watch = ctx.store.watch({ kind: kind.kind, namespace, fromRevision }, onEvent);

  const bookmark = () => send({ type: 'BOOKMARK', object: { metadata: { resourceVersion: String(delivered) } } });
  const timer = setInterval(bookmark, opts.bookmarkIntervalMs);
  timer.unref();
  let unregister: () => void = () => undefined;
  const end = () => {
    if (closed) return;
    closed = true;
    watch.close();
    clearInterval(timer);
    unregister();
    if (!res.writableEnded) res.end();
  };
  unregister = streams.add(end);
  // The client hanging up (or the socket failing) releases the store watch.
  res.on('close', end);
  if (res.destroyed || req.socket.destroyed) {
    end();
    return;
  }

  res.writeHead(200, {
    'content-type': 'application/x-ndjson',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  const queued = pending;
  pending = undefined;
  for (const r of initial) {
    if (selector(r.metadata.labels)) send({ type: 'ADDED', object: present(kind, r) });
  }
  for (const line of queued) send(line);
  bookmark();
}
