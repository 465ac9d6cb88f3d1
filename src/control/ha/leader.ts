import type { Etcd3, Watcher } from 'etcd3';
import type { Logger } from '../../lib/log.js';
import type { ReplicaSession } from './session.js';

export interface LeaderStatus {
  isLeader(): boolean;
  /** Called with the new state on every change; returns an unsubscribe function. */
  onChange(cb: (leader: boolean) => void): () => void;
}

export interface LeaderElectionOptions {
  client: Etcd3;
  /** The key every replica competes for, e.g. `/weft/leader`. */
  key: string;
  /** This replica's name, written as the key's value (who is leader: `etcdctl get /weft/leader`). */
  id: string;
  session: ReplicaSession;
  log: Logger;
}

/**
 * Leader election for the control plane's singleton duties (CA root rotation,
 * garbage collection): a create-if-absent of `key` attached to the replica's
 * session lease. The replica that created it leads until its lease ends (it
 * died, lost etcd for longer than the TTL, or closed and resigned); the
 * others watch the key and try again when it is deleted. At most one replica
 * holds the key at a time; a replica that loses its lease stops calling
 * itself leader at once, before the key is even gone.
 *
 * Failover takes at most the lease TTL after a leader's death (at once after a
 * clean shutdown, which deletes the key).
 */
export class LeaderElection implements LeaderStatus {
  private leader = false;
  private closed = false;
  private watcher: Watcher | undefined;
  private readonly listeners = new Set<(leader: boolean) => void>();
  private campaigning: Promise<void> | undefined;
  private again = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly offLease: () => void;
  private readonly keyBuf: Buffer;

  constructor(private readonly opts: LeaderElectionOptions) {
    this.keyBuf = Buffer.from(opts.key);
    this.offLease = opts.session.onLease((leaseId) => {
      // The lease that held the key is gone, and the key with it.
      this.setLeader(false);
      if (leaseId !== undefined) this.campaign();
    });
  }

  /** Starts campaigning; resolves after the first attempt (leader or not). */
  async start(): Promise<void> {
    this.campaign();
    await this.campaigning;
  }

  isLeader(): boolean {
    return this.leader;
  }

  onChange(cb: (leader: boolean) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /** Stops campaigning; a leader deletes its key so another replica takes over at once. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.offLease();
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    await this.campaigning?.catch(() => undefined);
    await this.watcher?.cancel().catch(() => undefined);
    const leaseId = this.opts.session.leaseId;
    if (this.leader && leaseId !== undefined) {
      await this.opts.client.kv
        .txn({
          compare: [{ key: this.keyBuf, target: 'Lease', result: 'Equal', lease: leaseId }],
          success: [{ request_delete_range: { key: this.keyBuf } }],
        })
        .catch((err: unknown) => this.opts.log.warn({ err: errText(err) }, 'could not resign leadership; it ends with the lease'));
    }
    this.setLeader(false);
    this.listeners.clear();
  }

  private campaign(): void {
    if (this.closed) return;
    if (this.campaigning !== undefined) {
      this.again = true;
      return;
    }
    this.campaigning = this.attempt()
      .catch((err: unknown) => {
        this.opts.log.warn({ err: errText(err) }, 'leader election: etcd request failed; retrying');
        this.retrySoon();
      })
      .finally(() => {
        this.campaigning = undefined;
        if (this.again) {
          this.again = false;
          this.campaign();
        }
      });
  }

  private retrySoon(): void {
    if (this.closed || this.retryTimer !== undefined) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.campaign();
    }, 1000);
    this.retryTimer.unref();
  }

  private async attempt(): Promise<void> {
    const leaseId = this.opts.session.leaseId;
    if (leaseId === undefined || this.closed) return; // the session tells us when it has a new one
    const res = await this.opts.client.kv.txn({
      compare: [{ key: this.keyBuf, target: 'Create', result: 'Equal', create_revision: '0' }],
      success: [{ request_put: { key: this.keyBuf, value: Buffer.from(this.opts.id), lease: leaseId } }],
      failure: [{ request_range: { key: this.keyBuf } }],
    });
    if (this.closed) return;
    if (res.succeeded) {
      this.setLeader(true);
    } else {
      const kv = res.responses[0]?.response_range?.kvs[0];
      // Our own key from before a restart of the campaign (same lease): still leader.
      if (kv !== undefined && String(kv.lease) === leaseId) {
        this.setLeader(true);
      } else {
        this.setLeader(false);
        if (kv !== undefined) this.opts.log.debug({ leader: kv.value.toString('utf8') }, 'leader election: another replica leads');
      }
    }
    await this.watchKey(Number(res.header.revision) + 1);
  }

  /** Watches the key from `fromRevision`; a delete starts another campaign. */
  private async watchKey(fromRevision: number): Promise<void> {
    if (this.watcher !== undefined || this.closed) return;
    const w = await this.opts.client.watch().key(this.keyBuf).startRevision(String(fromRevision)).create();
    if (this.closed) {
      await w.cancel().catch(() => undefined);
      return;
    }
    this.watcher = w;
    w.on('delete', () => {
      if (this.leader) this.setLeader(false);
      this.campaign();
    });
    w.on('error', (err: unknown) => {
      // The server canceled the watch (e.g. compaction): watch again from now.
      this.opts.log.warn({ err: errText(err) }, 'leader election: watch ended; watching again');
      if (this.watcher === w) this.watcher = undefined;
      this.campaign();
    });
  }

  private setLeader(v: boolean): void {
    if (this.leader === v) return;
    this.leader = v;
    this.opts.log.info({ replica: this.opts.id, leader: v }, v ? 'this replica is now the leader' : 'this replica is no longer the leader');
    for (const cb of this.listeners) {
      try {
        cb(v);
      } catch (err) {
        this.opts.log.error({ err }, 'leader listener failed');
      }
    }
  }
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
