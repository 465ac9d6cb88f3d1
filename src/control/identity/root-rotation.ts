/**
 * A singleton duty under the leader: keep the generated CA root from running out.
 *
 * The leader checks the signing root at start (and whenever it becomes leader),
 * then every hour. When the root that signs has less than a third of its
 * lifetime left, or less than twice the workload certificate TTL, it calls
 * `rotateRoot`: a new root joins the trust bundle (pushed to proxies over SDS)
 * while the old one keeps signing. Promote and retire stay operator steps
 * (docs/security.md): promoting before every workload holds the new bundle
 * would break verification. One rotation at a time: while a second root is in
 * the bundle (rotation in progress) nothing more happens. Only for a generated
 * root; supplied files are rotated by supplying new ones.
 */
import type { Logger } from '../../lib/log.js';
import type { LeaderStatus } from '../ha/leader.js';
import type { CaService } from './ca-service.js';

export const ROOT_CHECK_INTERVAL_MS = 3_600_000;

/** Timers and time, injected so tests move time by hand. */
export interface DutyClock {
  now(): number;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

const systemClock: DutyClock = {
  now: () => Date.now(),
  setInterval: (fn, ms) => {
    const t = setInterval(fn, ms);
    t.unref();
    return t;
  },
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
};

/** A control plane without etcd is the only one: it always leads. */
export const SOLE_LEADER: LeaderStatus = { isLeader: () => true, onChange: () => () => undefined };

export interface RootRotationOptions {
  ca: Pick<CaService, 'ca'>;
  leader: LeaderStatus;
  /** The workload certificate TTL in force (the Mesh's; read at each check). */
  workloadTtlMs: () => number | Promise<number>;
  log?: Logger;
  clock?: DutyClock;
  intervalMs?: number;
}

export type RootCheck = 'not-leader' | 'supplied' | 'in-progress' | 'not-due' | 'rotated' | 'failed';

export interface RootRotationDuty {
  /** One check now (what the timer runs); resolves with what it did. */
  check(): Promise<RootCheck>;
  close(): void;
}

/** Whether a root valid [notBefore, notAfter] is due for rotation at `now`. */
export function rootRotationDue(notBefore: number, notAfter: number, now: number, workloadTtlMs: number): boolean {
  const left = notAfter - now;
  return left < (notAfter - notBefore) / 3 || left < 2 * workloadTtlMs;
}

export function startRootRotation(opts: RootRotationOptions): RootRotationDuty {
  const clock = opts.clock ?? systemClock;
  const log = opts.log;
  let closed = false;
  let running: Promise<RootCheck> | undefined;

  const once = async (): Promise<RootCheck> => {
    if (closed || !opts.leader.isLeader()) return 'not-leader';
    const m = opts.ca.ca.material;
    if (m.source !== 'generated') return 'supplied';
    if (m.roots.length > 1) return 'in-progress';
    const signing = m.roots.find((r) => r.id === m.signer.rootId);
    if (signing === undefined) return 'not-due';
    const ttl = await opts.workloadTtlMs();
    const now = clock.now();
    const notBefore = signing.cert.notBefore.getTime();
    const notAfter = signing.cert.notAfter.getTime();
    if (!rootRotationDue(notBefore, notAfter, now, ttl)) return 'not-due';
    // Leadership may have moved while we read the Mesh.
    if (closed || !opts.leader.isLeader()) return 'not-leader';
    try {
      const root = await opts.ca.ca.rotateRoot();
      log?.warn({ old: signing.id, oldNotAfter: new Date(notAfter).toISOString(), new: root.id, newNotAfter: root.cert.notAfter.toISOString() }, 'ca: signing root near its end; a new root joined the trust bundle (promote it once every workload holds the bundle: docs/security.md)');
      return 'rotated';
    } catch (err) {
      log?.error({ err }, 'ca: automatic root rotation failed; retrying at the next check');
      return 'failed';
    }
  };
  const check = (): Promise<RootCheck> => {
    running ??= once().catch((err: unknown) => {
      log?.error({ err }, 'ca: root check failed');
      return 'failed' as const;
    }).finally(() => { running = undefined; });
    return running;
  };

  const timer = clock.setInterval(() => void check(), opts.intervalMs ?? ROOT_CHECK_INTERVAL_MS);
  const off = opts.leader.onChange((leader) => { if (leader) void check(); });
  void check();
  return {
    check,
    close() {
      closed = true;
      clock.clearInterval(timer);
      off();
    },
  };
}
