import type { Resource } from '../../api/types.js';
import type { Logger } from '../../lib/log.js';
import type { EtcdStore } from '../../store/etcd/etcd-store.js';
import type { ReplicaSession } from '../ha/session.js';
import type { RegistrationHandle, WorkloadRegistry } from './workload-registry.js';

export interface LeasedRegistrationsOptions {
  store: EtcdStore;
  registry: WorkloadRegistry;
  session: ReplicaSession;
  log: Logger;
  /** Delay before retrying after a failed etcd write (default 1 s). */
  retryMs?: number;
}

interface Published {
  json: string;
  /** The lease it was written with, or undefined when someone else owns the key (a user's Workload, another replica's). */
  leaseId: string | undefined;
}

/**
 * With a shared (etcd) store, the workloads registered by the proxies
 * connected to this replica are written to etcd as Workload objects attached
 * to this replica's session lease, so every replica serves them, and they
 * disappear by themselves when this replica dies (after the lease TTL).
 *
 * - A proxy that connects here takes its registration over: the object is
 *   moved onto this replica's lease, even if another replica wrote it (the
 *   proxy failed over) — unless a user applied a Workload of that name, which
 *   always wins and is never touched.
 * - When the proxy's last stream ends, the in-memory registry keeps the entry
 *   for its grace period; then the object is deleted, but only if it is still
 *   on this replica's lease (the proxy may have re-registered elsewhere).
 * - When the lease is lost and a new one granted, live registrations are
 *   written again; ones in their grace period only where nobody else took them.
 *
 * The in-memory registry stays what this replica's xDS translation reads; the
 * objects in etcd are what the other replicas see (the store's Workloads win
 * over registered ones of the same name, and they are the same object).
 */
export class LeasedRegistrations {
  private readonly published = new Map<string, Published>();
  private readonly takeOver = new Set<string>();
  private running: Promise<void> | undefined;
  private dirty = false;
  private closed = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly unsubscribe: (() => void)[];

  constructor(private readonly opts: LeasedRegistrationsOptions) {
    this.unsubscribe = [
      opts.registry.onChange(() => this.schedule()),
      opts.registry.onConnect((h) => {
        this.takeOver.add(keyOf(h));
        this.schedule();
      }),
      opts.session.onLease((leaseId) => {
        // Whatever was on the old lease is gone with it: write everything again.
        for (const k of this.published.keys()) this.published.set(k, { json: '', leaseId: undefined });
        if (leaseId !== undefined) this.schedule();
      }),
    ];
    this.schedule();
  }

  /** Resolves when everything known so far has been written (for tests). */
  async settled(): Promise<void> {
    while (this.running !== undefined) await this.running;
  }

  /** Stops writing. Does not delete anything: the registrations last until the lease expires. */
  async close(): Promise<void> {
    this.closed = true;
    for (const u of this.unsubscribe) u();
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    await this.running?.catch(() => undefined);
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.running !== undefined) {
      this.dirty = true;
      return;
    }
    this.running = this.sync()
      .catch((err: unknown) => {
        this.opts.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'writing workload registrations to etcd failed; retrying');
        if (this.retryTimer === undefined && !this.closed) {
          this.retryTimer = setTimeout(() => {
            this.retryTimer = undefined;
            this.schedule();
          }, this.opts.retryMs ?? 1000);
          this.retryTimer.unref();
        }
      })
      .finally(() => {
        this.running = undefined;
        if (this.dirty) {
          this.dirty = false;
          this.schedule();
        }
      });
  }

  private async sync(): Promise<void> {
    const leaseId = this.opts.session.leaseId;
    if (leaseId === undefined) return; // the session tells us when a new lease is granted
    const desired = new Map<string, Resource>();
    for (const w of this.opts.registry.list()) desired.set(keyOf({ namespace: w.metadata.namespace ?? 'default', name: w.metadata.name }), w);

    for (const [k, w] of desired) {
      if (this.closed) return;
      const json = JSON.stringify(w);
      const prev = this.published.get(k);
      const takeOver = this.takeOver.has(k);
      if (!takeOver && prev !== undefined && prev.json === json && (prev.leaseId === leaseId || prev.leaseId === undefined)) continue;
      this.takeOver.delete(k);
      const handle = handleOf(k);
      const mode = this.opts.registry.isHeld(handle) ? 'take-over' : 'if-absent-or-ours';
      let owned: boolean;
      try {
        owned = await this.opts.store.putLeased(w, leaseId, mode);
      } catch (e) {
        if (takeOver) this.takeOver.add(k);
        throw e;
      }
      this.published.set(k, { json, leaseId: owned ? leaseId : undefined });
      if (owned) this.opts.log.debug({ workload: k, leaseId }, 'workload registration written to etcd');
      else this.opts.log.info({ workload: k }, 'a Workload of this name is owned elsewhere (applied by a user, or registered through another replica); not overwritten');
    }

    for (const [k, p] of this.published) {
      if (desired.has(k) || this.closed) continue;
      if (p.leaseId === leaseId) {
        const deleted = await this.opts.store.deleteLeased({ kind: 'Workload', ...handleOf(k) }, leaseId);
        this.opts.log.debug({ workload: k, deleted }, 'workload registration ended');
      }
      this.published.delete(k);
    }
  }
}

function keyOf(h: RegistrationHandle): string {
  return `${h.namespace}/${h.name}`;
}

function handleOf(k: string): RegistrationHandle {
  const i = k.indexOf('/');
  return { namespace: k.slice(0, i), name: k.slice(i + 1) };
}
