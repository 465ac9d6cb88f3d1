import { Etcd3, type IKeyValue, type IRangeResponse, type IRequestOp, type ITxnResponse } from 'etcd3';
import { keyOf, keyString, type Resource, type ResourceKey } from '../../api/types.js';
import { isWeftError, WeftError } from '../../lib/errors.js';
import { createLogger, type Logger } from '../../lib/log.js';
import { compareResources } from '../memory-log.js';
import type { ConfigStore, DeleteOptions, ListOptions, ListResult, PutOptions, Watch, WatchEvent } from '../types.js';
import { checkDeletePrecondition, checkPutPrecondition, copyOut, planPut, tombstone } from '../write-plan.js';
import { decodeObject, encodeObject } from './codec.js';
import { EtcdWatch, errText, type EtcdWatchOptions, type WatchContext } from './etcd-watch.js';
import { matchesFilter, normalizePrefix, objectKey, parseObjectKey, prefixEnd, rangePrefix } from './keys.js';

export type { EtcdWatchOptions } from './etcd-watch.js';

export interface EtcdStoreOptions {
  /** Client URLs of the etcd members, e.g. ['http://10.0.0.1:2379', ...]. */
  endpoints: string[];
  /** Every key the store uses starts with this; default '/weft/'. A missing trailing '/' is added. */
  prefix?: string;
  logger?: Logger;
  /** Deadline for each unary etcd call; default 10 s. Watches have none. */
  requestTimeoutMs?: number;
  /** How long to wait for a connection to a member; default 5 s. */
  dialTimeoutMs?: number;
  /** Objects per etcd range request when listing; default 500. */
  listPageSize?: number;
  /** Clock for creationTimestamp. */
  now?: () => Date;
}

/** Rounds of read-compute-transact before a write gives up under contention. */
const MAX_ATTEMPTS = 100;

/**
 * The etcd v3 backend. Each object is one key,
 * `<prefix>resources/<Kind>/<namespace or _cluster>/<name>`, holding its JSON.
 * An object's resourceVersion is its key's mod_revision, and the store's
 * revision is etcd's revision, so several control-plane replicas sharing one
 * etcd agree on both. Writes are read-compute-transact rounds: the
 * transaction commits only if every key it read is still at the revision it
 * read, so preconditions are exact and a write never overwrites one it has
 * not seen.
 */
export async function openEtcdStore(opts: EtcdStoreOptions): Promise<EtcdStore> {
  if (opts.endpoints.length === 0) throw new WeftError('WEFT_ERR_USAGE', 'the etcd store needs at least one endpoint');
  const prefix = normalizePrefix(opts.prefix);
  const log = opts.logger ?? createLogger('store');
  const timeout = opts.requestTimeoutMs ?? 10_000;
  const client = new Etcd3({
    hosts: opts.endpoints,
    dialTimeout: opts.dialTimeoutMs ?? 5_000,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
  });
  const store = new EtcdStore(client, prefix, log, opts.now ?? (() => new Date()), opts.listPageSize ?? 500);
  try {
    // Fail now, with a clear message, rather than at the first request.
    await store.revision();
  } catch (e) {
    client.close();
    throw e;
  }
  log.debug({ endpoints: opts.endpoints, prefix }, 'etcd store opened');
  return store;
}

interface Current {
  key: ResourceKey;
  etcdKey: Buffer;
  object: Resource | undefined;
  /** '0' when the key does not exist: compares like a missing key's mod_revision. */
  modRevision: string;
  raw: Buffer | undefined;
}

interface Attempt {
  body: Buffer | undefined;
  created: boolean;
}

export class EtcdStore implements ConfigStore {
  private closed = false;
  /** Highest etcd revision this client has seen in any response. */
  private lastSeen = 0;
  /** Watches starting at or below this revision are known to be compacted away. */
  private goneThrough = 0;
  private readonly watches = new Set<EtcdWatch>();
  private readonly watchCtx: WatchContext;

  constructor(
    private readonly client: Etcd3,
    private readonly prefix: string,
    private readonly log: Logger,
    private readonly now: () => Date,
    private readonly listPage: number,
  ) {
    this.watchCtx = {
      client,
      prefix,
      log,
      isCompacted: (rev) => this.isCompacted(rev),
      noteGone: (rev) => {
        this.goneThrough = Math.max(this.goneThrough, rev);
      },
      observe: (rev) => this.observe(rev),
      onWatcherError: (err) => log.error({ err }, 'store watcher failed; the write it was told about is unaffected'),
      detach: (w) => this.watches.delete(w),
    };
  }

  async get(key: ResourceKey): Promise<Resource | undefined> {
    this.assertOpen();
    const cur = (await this.readCurrent([key]))[0] as Current;
    return cur.object;
  }

  async list(opts: ListOptions = {}): Promise<ListResult> {
    this.assertOpen();
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.listOnce(opts);
      } catch (e) {
        // A compaction between two pages: read the whole list again.
        if (attempt >= 3 || !/compacted/i.test(errText(e))) throw e;
      }
    }
  }

  private async listOnce(opts: ListOptions): Promise<ListResult> {
    const start = rangePrefix(this.prefix, opts);
    const end = prefixEnd(start);
    const items: Resource[] = [];
    // Pages are read at the first page's revision, so the list is one snapshot.
    let revision: string | undefined;
    let from = Buffer.from(start);
    for (;;) {
      const res: IRangeResponse = await this.call('list', () =>
        this.client.kv.range({ key: from, range_end: end, limit: this.listPage, ...(revision === undefined ? {} : { revision }) }),
      );
      revision ??= res.header.revision;
      for (const kv of res.kvs) {
        const o = this.decodeKv(kv);
        if (o !== undefined && matchesFilter(keyOf(o), opts)) items.push(o);
      }
      const last = res.kvs.at(-1);
      if (!res.more || last === undefined) break;
      from = Buffer.concat([last.key, Buffer.from([0])]);
    }
    return { items: items.sort(compareResources), revision: Number(revision) };
  }

  async put(resource: Resource, opts: PutOptions = {}): Promise<Resource> {
    const out = await this.putMany([resource], { expectedResourceVersions: [opts.expectedResourceVersion] });
    return out[0] as Resource;
  }

  /**
   * One etcd transaction for all objects: it compares every key's
   * mod_revision with what was read and writes every changed object, so the
   * batch commits entirely or not at all, even if this process dies midway.
   * All objects written share the transaction's revision. etcd limits a
   * transaction to --max-txn-ops operations (128 by default).
   */
  async putMany(resources: readonly Resource[], opts: { expectedResourceVersions?: readonly (string | null | undefined)[] } = {}): Promise<Resource[]> {
    this.assertOpen();
    const keys = resources.map(keyOf);
    const seen = new Set<string>();
    for (const k of keys) {
      objectKey(this.prefix, k); // validates
      const s = keyString(k);
      if (seen.has(s)) throw new WeftError('WEFT_ERR_INVALID', `${s} appears more than once in one putMany`);
      seen.add(s);
    }
    const expected = opts.expectedResourceVersions;
    if (expected !== undefined && expected.length !== resources.length) {
      throw new WeftError('WEFT_ERR_INTERNAL', `putMany: ${expected.length} expected resourceVersions for ${resources.length} resources`);
    }
    if (resources.length === 0) return [];

    let current = await this.readCurrent(keys);
    /** What the previous round tried to write, to recognise it if it did commit. */
    let attempted: Attempt[] | undefined;
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      // A transaction whose response was lost and which the client retried
      // may in fact have committed (the retry then fails its compare): see
      // isOurs for when that can be recognised.
      if (attempted !== undefined && this.isOurs(current, attempted)) {
        return current.map((c) => copyOut(c.object as Resource));
      }
      current.forEach((c, i) => checkPutPrecondition(c.key, c.object, expected?.[i]));
      const plans = current.map((c, i) => planPut(c.object, resources[i] as Resource, 0, this.now));
      if (plans.every((p) => p.kind === 'unchanged')) return plans.map((p) => copyOut(p.object));

      const bodies = plans.map((p) => (p.kind === 'write' ? encodeObject(p.object) : undefined));
      const res = await this.txn(
        'write',
        current,
        current.flatMap((c, i) => {
          const value = bodies[i];
          return value === undefined ? [] : [{ request_put: { key: c.etcdKey, value } }];
        }),
      );
      if (res.succeeded) {
        const rv = res.header.revision;
        return plans.map((p) => {
          if (p.kind === 'unchanged') return copyOut(p.object);
          return copyOut({ ...p.object, metadata: { ...p.object.metadata, resourceVersion: rv } });
        });
      }
      // Someone wrote in between: the failure branch read the keys again.
      attempted = bodies.map((body, i) => ({ body, created: current[i]?.object === undefined }));
      current = this.currentFrom(current, res);
    }
    throw new WeftError('WEFT_ERR_CONFLICT', `gave up writing ${keys.map(keyString).join(', ')} after ${MAX_ATTEMPTS} attempts: other writers keep changing them`);
  }

  async delete(key: ResourceKey, opts: DeleteOptions = {}): Promise<Resource | undefined> {
    this.assertOpen();
    let current = await this.readCurrent([key]);
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const cur = current[0] as Current;
      if (!checkDeletePrecondition(key, cur.object, opts.expectedResourceVersion)) return undefined;
      const res = await this.txn('delete', current, [{ request_delete_range: { key: cur.etcdKey } }]);
      if (res.succeeded) return copyOut(tombstone(cur.object, Number(res.header.revision)));
      current = this.currentFrom(current, res);
    }
    throw new WeftError('WEFT_ERR_CONFLICT', `gave up deleting ${keyString(key)} after ${MAX_ATTEMPTS} attempts: other writers keep changing it`);
  }

  /**
   * Events after `fromRevision`, or, without it, after the last revision this
   * client has seen (so every change made after an acknowledged write is
   * delivered). Events of one putMany share its revision.
   */
  watch(opts: EtcdWatchOptions, onEvent: (e: WatchEvent) => void): Watch {
    this.assertOpen();
    rangePrefix(this.prefix, opts); // validates the filter now, not in a callback
    const from = opts.fromRevision;
    if (from !== undefined && from + 1 <= this.goneThrough) {
      throw new WeftError('WEFT_ERR_GONE', `revision ${from} is too old: etcd has compacted it; list again and watch from the list's revision`);
    }
    const w = new EtcdWatch(this.watchCtx, opts, (from ?? this.lastSeen) + 1, onEvent);
    this.watches.add(w);
    return w;
  }

  async revision(): Promise<number> {
    this.assertOpen();
    // Any linearizable read answers with the cluster's current revision; one
    // key that never exists keeps it cheap.
    const res = await this.call('revision', () => this.client.kv.range({ key: Buffer.from(`${this.prefix}revision`), count_only: true }));
    return Number(res.header.revision);
  }

  /**
   * The etcd client and key prefix, for what the control plane keeps next to
   * the objects (leases, leader election: src/control/ha/).
   */
  get etcd(): { client: Etcd3; prefix: string } {
    return { client: this.client, prefix: this.prefix };
  }

  /**
   * Writes `resource` attached to etcd lease `leaseId`, so it disappears by
   * itself when the lease ends (workload registrations). Never touches an
   * object stored without a lease (one a user applied): that one wins, and
   * the result is `false`. `mode`:
   * - `take-over`: write unless the object is a user's, moving it onto this
   *   lease even when its content is unchanged (a proxy reconnected here);
   * - `if-absent-or-ours`: write only when the key is missing or already on
   *   this lease.
   * Returns whether the object is now on this lease.
   */
  async putLeased(resource: Resource, leaseId: string, mode: 'take-over' | 'if-absent-or-ours'): Promise<boolean> {
    this.assertOpen();
    const key = keyOf(resource);
    const etcdKey = Buffer.from(objectKey(this.prefix, key));
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const read: IRangeResponse = await this.call('read', () => this.client.kv.range({ key: etcdKey }));
      const kv = read.kvs[0];
      let existing: Resource | undefined;
      if (kv !== undefined) {
        const d = decodeObject(key, kv.value, kv.mod_revision);
        if (!d.ok) throw new WeftError('WEFT_ERR_STORE', `etcd key ${etcdKey.toString('utf8')} does not hold a Weft object (${d.reason}); remove or repair it`);
        existing = d.object;
      }
      const lease = kv === undefined ? undefined : String(kv.lease);
      if (lease === '0') return false;
      if (mode === 'if-absent-or-ours' && lease !== undefined && lease !== leaseId) return false;
      const plan = planPut(existing, resource, 0, this.now);
      if (plan.kind === 'unchanged' && lease === leaseId) return true;
      const res = await this.call('write', () =>
        this.client.kv.txn({
          compare: [{ key: etcdKey, target: 'Mod', result: 'Equal', mod_revision: kv?.mod_revision ?? '0' }],
          success: [{ request_put: { key: etcdKey, value: encodeObject(plan.object), lease: leaseId } }],
        }),
      );
      if (res.succeeded) return true;
    }
    throw new WeftError('WEFT_ERR_CONFLICT', `gave up writing ${keyString(key)} after ${MAX_ATTEMPTS} attempts: other writers keep changing it`);
  }

  /** Deletes `key` only if it is still attached to lease `leaseId` (nobody took it over). Returns whether it did. */
  async deleteLeased(key: ResourceKey, leaseId: string): Promise<boolean> {
    this.assertOpen();
    const etcdKey = Buffer.from(objectKey(this.prefix, key));
    const res = await this.call('delete', () =>
      this.client.kv.txn({
        compare: [{ key: etcdKey, target: 'Lease', result: 'Equal', lease: leaseId }],
        success: [{ request_delete_range: { key: etcdKey } }],
      }),
    );
    return res.succeeded;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const stopping = [...this.watches].map((w) => w.stop());
    // etcd3 keeps re-opening a watch stream while any watcher is attached, so
    // let go of them before closing the client, but do not hang on a dead etcd.
    await Promise.race([Promise.all(stopping), new Promise((r) => setTimeout(r, 2000).unref())]);
    this.client.close();
  }

  // ------------------------------------------------------------ internals

  /** The current state of `keys`, read in one transaction (one snapshot). */
  private async readCurrent(keys: readonly ResourceKey[]): Promise<Current[]> {
    const etcdKeys = keys.map((k) => Buffer.from(objectKey(this.prefix, k)));
    const res = await this.call('read', () =>
      this.client.kv.txn({ compare: [], success: etcdKeys.map((key) => ({ request_range: { key } })) }),
    );
    return this.currentFrom(
      keys.map((key, i) => ({ key, etcdKey: etcdKeys[i] as Buffer, object: undefined, modRevision: '0', raw: undefined })),
      res,
    );
  }

  /** Fill `template` from the range responses of a transaction, one per key in order. */
  private currentFrom(template: readonly Current[], res: ITxnResponse): Current[] {
    return template.map((t, i) => {
      const kv = res.responses[i]?.response_range?.kvs[0];
      if (kv === undefined) return { ...t, object: undefined, modRevision: '0', raw: undefined };
      const d = decodeObject(t.key, kv.value, kv.mod_revision);
      if (!d.ok) {
        throw new WeftError('WEFT_ERR_STORE', `etcd key ${kv.key.toString('utf8')} does not hold a Weft object (${d.reason}); remove or repair it`);
      }
      return { ...t, object: d.object, modRevision: kv.mod_revision, raw: kv.value };
    });
  }

  /**
   * Commit `ops` if every key in `current` is still at the mod_revision read
   * (0: still missing). On failure the response carries a fresh read of every
   * key, in order.
   */
  private txn(what: string, current: readonly Current[], ops: IRequestOp[]): Promise<ITxnResponse> {
    return this.call(what, () =>
      this.client.kv.txn({
        compare: current.map((c) => ({ key: c.etcdKey, target: 'Mod', result: 'Equal', mod_revision: c.modRevision })),
        success: ops,
        failure: current.map((c) => ({ request_range: { key: c.etcdKey } })),
      }),
    );
  }

  /**
   * Whether the previous round's transaction committed after all. Only a
   * created object proves it: its value holds a fresh random uid, so equal
   * bytes cannot come from another writer (an update computed from the same
   * base by two writers can be byte-identical, so it proves nothing). One
   * proof covers the batch, since the transaction was all-or-nothing.
   */
  private isOurs(current: readonly Current[], attempted: readonly Attempt[]): boolean {
    let proof = false;
    for (const [i, c] of current.entries()) {
      const a = attempted[i];
      if (c.object === undefined) return false;
      if (a?.body === undefined) continue;
      // Every object written must still hold exactly what this client wrote.
      if (c.raw === undefined || !c.raw.equals(a.body)) return false;
      if (a.created) proof = true;
    }
    return proof;
  }

  private decodeKv(kv: IKeyValue): Resource | undefined {
    const etcdKey = kv.key.toString('utf8');
    const key = parseObjectKey(this.prefix, etcdKey);
    if (key === undefined) return undefined;
    const d = decodeObject(key, kv.value, kv.mod_revision);
    if (!d.ok) {
      this.log.warn({ key: etcdKey, reason: d.reason }, 'skipping an etcd value that is not a Weft object');
      return undefined;
    }
    return d.object;
  }

  private async isCompacted(rev: number): Promise<boolean> {
    try {
      await this.client.kv.range({ key: Buffer.from(`${this.prefix}resources/`), count_only: true, revision: rev });
      return false;
    } catch (e) {
      const msg = errText(e);
      if (/compacted/i.test(msg)) return true;
      if (/future revision/i.test(msg)) return false;
      throw e;
    }
  }

  /** One etcd request: note its revision, and turn client errors into WEFT_ERR_STORE. */
  private async call<T extends { header: { revision: string } }>(what: string, f: () => Promise<T>): Promise<T> {
    let res: T;
    try {
      res = await f();
    } catch (e) {
      if (isWeftError(e)) throw e;
      const msg = errText(e);
      const hint = /too many operations/i.test(msg)
        ? ' (a putMany larger than etcd allows in one transaction: raise etcd --max-txn-ops or write fewer objects at once)'
        : /request is too large/i.test(msg)
          ? ' (raise etcd --max-request-bytes or write smaller batches)'
          : '';
      throw new WeftError('WEFT_ERR_STORE', `etcd ${what} failed: ${msg}${hint}`, { cause: e });
    }
    this.observe(Number(res.header.revision));
    return res;
  }

  private observe(rev: number): void {
    if (rev > this.lastSeen) this.lastSeen = rev;
  }

  private assertOpen(): void {
    if (this.closed) throw new WeftError('WEFT_ERR_STORE', 'the store is closed');
  }
}
