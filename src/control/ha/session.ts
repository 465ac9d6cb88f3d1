import type { Etcd3, Lease } from 'etcd3';
import type { Logger } from '../../lib/log.js';

export const DEFAULT_LEASE_TTL_S = 10;

/**
 * One etcd lease per control-plane replica (like etcd's concurrency.Session):
 * the workloads this replica registered and its leader key hang off it, so
 * when the replica dies (or is cut off from etcd for longer than the TTL)
 * etcd deletes them by itself. Kept alive every TTL/3 by etcd3. When etcd
 * reports the lease lost, a new one is granted and `onLease` listeners are
 * told its id (they put their keys back).
 */
export class ReplicaSession {
  private lease: Lease | undefined;
  private id: string | undefined;
  private closed = false;
  private readonly listeners = new Set<(leaseId: string | undefined) => void>();
  private retryTimer: NodeJS.Timeout | undefined;
  private granting: Promise<void> | undefined;

  private constructor(
    private readonly client: Etcd3,
    readonly ttlSeconds: number,
    private readonly log: Logger,
  ) {}

  /** Grants the first lease (rejects when etcd cannot). */
  static async start(client: Etcd3, ttlSeconds: number, log: Logger): Promise<ReplicaSession> {
    const s = new ReplicaSession(client, ttlSeconds, log);
    await s.grant();
    return s;
  }

  /** The current lease id, or undefined between a loss and the next grant. */
  get leaseId(): string | undefined {
    return this.id;
  }

  /** Told the new lease id after a loss and re-grant (undefined: lost, a new one is being granted). */
  onLease(cb: (leaseId: string | undefined) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  private async grant(): Promise<void> {
    const lease = this.client.lease(this.ttlSeconds);
    lease.on('lost', (err) => {
      if (this.lease !== lease || this.closed) return;
      this.lease = undefined;
      this.id = undefined;
      this.log.warn({ err: err.message }, 'etcd lease lost: this replica\'s registrations and leadership ended; granting a new lease');
      this.emit(undefined);
      this.regrantSoon(200);
    });
    // etcd3 emits 'lost' for a failed grant too; catch the rejection so it is not unhandled.
    const id = await lease.grant();
    if (this.closed) {
      lease.release();
      return;
    }
    this.lease = lease;
    this.id = id;
    this.log.info({ leaseId: id, ttlSeconds: this.ttlSeconds }, 'etcd lease granted');
  }

  private regrantSoon(delayMs: number): void {
    if (this.closed || this.retryTimer !== undefined) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.granting = this.grant().then(
        () => {
          if (this.id !== undefined) this.emit(this.id);
        },
        (err: unknown) => {
          this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'cannot grant an etcd lease; retrying');
          this.regrantSoon(Math.min(delayMs * 2, 5000));
        },
      );
    }, delayMs);
    this.retryTimer.unref();
  }

  private emit(id: string | undefined): void {
    for (const cb of this.listeners) {
      try {
        cb(id);
      } catch (err) {
        this.log.error({ err }, 'lease listener failed');
      }
    }
  }

  /**
   * Stops keeping the lease alive without revoking it: what hangs off it
   * (registrations) lasts one more TTL, time for the proxies to re-register
   * with another replica, so a rolling restart causes no endpoint flap.
   */
  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    await this.granting?.catch(() => undefined);
    this.lease?.release();
    this.lease = undefined;
    this.id = undefined;
    this.listeners.clear();
  }
}
