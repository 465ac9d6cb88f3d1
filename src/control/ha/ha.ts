import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../lib/log.js';
import type { EtcdStore } from '../../store/etcd/etcd-store.js';
import { LeasedRegistrations } from '../registry/leased-registrations.js';
import type { WorkloadRegistry } from '../registry/workload-registry.js';
import { LeaderElection, type LeaderStatus } from './leader.js';
import { DEFAULT_LEASE_TTL_S, ReplicaSession } from './session.js';

export interface HaOptions {
  store: EtcdStore;
  /** The xDS server's registry of connected workloads. */
  registry: WorkloadRegistry;
  /** Lease TTL in seconds (default 10): how long a dead replica's registrations and leadership outlive it. */
  leaseTtlSeconds?: number;
  /** This replica's name in the leader key (default `<hostname>-<pid>-<random>`). */
  replicaId?: string;
  log: Logger;
}

export interface Ha {
  replicaId: string;
  session: ReplicaSession;
  leader: LeaderStatus;
  registrations: LeasedRegistrations;
  close(): Promise<void>;
}

/**
 * What a replica sharing an etcd store runs besides the API and xDS: its
 * session lease, workload registrations written to etcd on that lease, and
 * the leader election for singleton duties (`<prefix>leader`).
 */
export async function startHa(opts: HaOptions): Promise<Ha> {
  const { client, prefix } = opts.store.etcd;
  const replicaId = opts.replicaId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const log = opts.log;
  const session = await ReplicaSession.start(client, opts.leaseTtlSeconds ?? DEFAULT_LEASE_TTL_S, log.child({ component: 'lease' }));
  const registrations = new LeasedRegistrations({ store: opts.store, registry: opts.registry, session, log: log.child({ component: 'registrations' }) });
  const leader = new LeaderElection({ client, key: `${prefix}leader`, id: replicaId, session, log: log.child({ component: 'leader' }) });
  try {
    await leader.start();
  } catch (e) {
    await registrations.close();
    await session.close();
    throw e;
  }
  log.info({ replicaId, leader: leader.isLeader(), leaseId: session.leaseId }, 'high availability: lease granted, leader election running');
  return {
    replicaId,
    session,
    leader,
    registrations,
    async close() {
      await leader.close();
      await registrations.close();
      await session.close();
    },
  };
}
