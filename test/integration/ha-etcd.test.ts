// High availability pieces on a real etcd (one member): the replica session
// lease, leader election, workload registrations held by leases (take-over by
// another replica, expiry with the replica, users' Workloads never touched),
// and the shared admin token. Skipped, with the reason printed, without etcd.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Etcd3 } from 'etcd3';
import { sharedAdminToken } from '../../src/control/ha/admin-token.js';
import { LeaderElection } from '../../src/control/ha/leader.js';
import { ReplicaSession } from '../../src/control/ha/session.js';
import { LeasedRegistrations } from '../../src/control/registry/leased-registrations.js';
import { jsonToStruct } from '../../src/control/registry/node-metadata.js';
import { WorkloadRegistry, type XdsNode } from '../../src/control/registry/workload-registry.js';
import { createLogger } from '../../src/lib/log.js';
import { openEtcdStore, type EtcdStore } from '../../src/store/etcd/etcd-store.js';
import { etcdSkipReason, startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';

const skip = etcdSkipReason();
if (skip !== undefined) process.stdout.write(`# skipping the HA etcd tests: ${skip}\n`);
const log = createLogger('test', 'silent');
let cluster: EtcdCluster | undefined;
let tmp: string;
const toClose: (() => Promise<unknown>)[] = [];

async function store(prefix: string): Promise<EtcdStore> {
  assert.ok(cluster);
  const s = await openEtcdStore({ endpoints: cluster.endpoints, prefix, logger: log, requestTimeoutMs: 5000 });
  toClose.push(() => s.close());
  return s;
}

async function session(s: EtcdStore, ttl: number): Promise<ReplicaSession> {
  const x = await ReplicaSession.start(s.etcd.client, ttl, log);
  toClose.push(() => x.close());
  return x;
}

async function until<T>(what: string, deadlineMs: number, f: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) assert.fail(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function leaseOf(client: Etcd3, key: string): Promise<string | undefined> {
  const res = await client.kv.range({ key: Buffer.from(key) });
  const kv = res.kvs[0];
  return kv === undefined ? undefined : String(kv.lease);
}

const node = (id: string, name = 'catalog-0'): XdsNode => ({
  id,
  metadata: jsonToStruct({ WEFT_WORKLOAD_ADDRESS: '127.0.0.1', WEFT_SERVICE: 'catalog', WEFT_WORKLOAD_PORTS: '8080', WEFT_WORKLOAD_NAME: name }),
});

describe('control-plane HA on etcd', { skip }, () => {
  before(async () => {
    if (skip !== undefined) return;
    tmp = await mkdtemp(join(tmpdir(), 'weft-ha-'));
    cluster = await startEtcdCluster({ members: 1, dataDir: join(tmp, 'etcd') });
  });
  after(async () => {
    for (const c of toClose.reverse()) await c().catch(() => undefined);
    await cluster?.stop();
    if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
  });

  test('leader election: exactly one leader; a clean close hands over at once; a dead leader after its TTL', async () => {
    const prefix = `/weft-ha-${randomBytes(4).toString('hex')}/`;
    const [s1, s2, s3] = await Promise.all([store(prefix), store(prefix), store(prefix)]);
    const sessions = await Promise.all([session(s1, 2), session(s2, 2), session(s3, 2)]);
    const elections = [s1, s2, s3].map((s, i) => new LeaderElection({ client: s.etcd.client, key: `${prefix}leader`, id: `r${i}`, session: sessions[i]!, log }));
    for (const e of elections) toClose.push(() => e.close());
    await Promise.all(elections.map((e) => e.start()));
    const leaders = () => elections.map((e, i) => (e.isLeader() ? i : -1)).filter((i) => i >= 0);
    assert.equal(leaders().length, 1, `leaders: ${leaders().join(',')}`);
    const first = leaders()[0]!;
    assert.equal((await s1.etcd.client.get(`${prefix}leader`).string()), `r${first}`);

    // Clean shutdown: the leader deletes its key; another takes over at once.
    const changes: boolean[] = [];
    const t0 = Date.now();
    await elections[first]!.close();
    const second = await until('a new leader after a clean close', 3000, () => leaders().find((i) => i !== first));
    const handover = Date.now() - t0;
    process.stdout.write(`# leader handover after a clean close: ${handover} ms\n`);
    assert.ok(handover < 1000, `handover took ${handover} ms`);
    assert.equal(leaders().length, 1);
    elections[second]!.onChange((v) => changes.push(v));

    // The leader's replica "dies": its lease is no longer kept alive. The key
    // goes when the lease expires (TTL 2 s), and the third replica takes over.
    const t1 = Date.now();
    await sessions[second]!.close(); // stops keepalives without revoking
    const third = await until('a new leader after the lease expired', 8000, () => leaders().find((i) => i !== first && i !== second));
    const failover = Date.now() - t1;
    process.stdout.write(`# leader failover after the leader stopped renewing (TTL 2 s): ${failover} ms\n`);
    assert.ok(failover >= 1000 && failover < 6000, `failover took ${failover} ms`);
    assert.equal(await s1.etcd.client.get(`${prefix}leader`).string(), `r${third}`);
    // The old leader stood down (it lost nothing yet from its own view, so it
    // learns from the key's deletion).
    await until('the old leader to stand down', 3000, () => (elections[second]!.isLeader() ? undefined : true));
    assert.deepEqual(changes, [false]);
  });

  test('registrations: written on the replica lease, taken over by another replica, gone when that replica dies', async () => {
    const prefix = `/weft-ha-${randomBytes(4).toString('hex')}/`;
    const [sa, sb] = await Promise.all([store(prefix), store(prefix)]);
    const [la, lb] = await Promise.all([session(sa, 2), session(sb, 2)]);
    const ra = new WorkloadRegistry({ graceMs: 300 });
    const rb = new WorkloadRegistry({ graceMs: 300 });
    const pa = new LeasedRegistrations({ store: sa, registry: ra, session: la, log, retryMs: 100 });
    const pb = new LeasedRegistrations({ store: sb, registry: rb, session: lb, log, retryMs: 100 });
    toClose.push(() => pa.close(), () => pb.close());
    const key = `${prefix}resources/Workload/default/catalog-0`;
    const client = sa.etcd.client;

    // Registered through A: a Workload in etcd, on A's lease, seen by B's store.
    const ha = ra.connect(node('sidecar~a'));
    assert.ok(ha);
    await pa.settled();
    assert.equal(await leaseOf(client, key), la.leaseId);
    const w = await sb.get({ kind: 'Workload', namespace: 'default', name: 'catalog-0' });
    assert.equal((w?.spec as { address?: string } | undefined)?.address, '127.0.0.1');
    assert.equal(w?.metadata.annotations?.['weft.dev/registered-by'], 'sidecar~a');

    // The proxy fails over to B: B takes it over, although the content is the same.
    const hb = rb.connect(node('sidecar~a'));
    assert.ok(hb);
    await pb.settled();
    assert.equal(await leaseOf(client, key), lb.leaseId);
    // A's stream ends and its grace period passes: A must not delete B's registration.
    ra.release(ha);
    await until('A to drop its in-memory entry', 3000, () => (ra.list().length === 0 ? true : undefined));
    await pa.settled();
    assert.equal(await leaseOf(client, key), lb.leaseId, 'still registered, on B\'s lease');

    // B dies (stops renewing): the registration disappears by itself after the TTL.
    const t0 = Date.now();
    await pb.close();
    await lb.close();
    await until('the registration to expire with B\'s lease', 8000, async () => ((await leaseOf(client, key)) === undefined ? true : undefined));
    const gone = Date.now() - t0;
    process.stdout.write(`# registration of a dead replica gone after ${gone} ms (TTL 2 s)\n`);
    assert.ok(gone >= 1000, `gone after ${gone} ms: too early for a 2 s lease`);
    rb.close();
    ra.close();
  });

  test('registrations: a clean end deletes after the grace period; a Workload a user applied is never touched', async () => {
    const prefix = `/weft-ha-${randomBytes(4).toString('hex')}/`;
    const s = await store(prefix);
    const l = await session(s, 5);
    const r = new WorkloadRegistry({ graceMs: 200 });
    const p = new LeasedRegistrations({ store: s, registry: r, session: l, log, retryMs: 100 });
    toClose.push(() => p.close());
    const client = s.etcd.client;

    const h = r.connect(node('sidecar~x', 'x-0'));
    assert.ok(h);
    await p.settled();
    const xKey = `${prefix}resources/Workload/default/x-0`;
    assert.equal(await leaseOf(client, xKey), l.leaseId);
    r.release(h);
    await until('x-0 deleted after the grace period', 3000, async () => ((await leaseOf(client, xKey)) === undefined ? true : undefined));

    // A user's Workload of the same name wins: not overwritten, not put on a lease, not deleted.
    const userW = await s.put({ apiVersion: 'weft.dev/v1alpha1', kind: 'Workload', metadata: { name: 'y-0', namespace: 'default' }, spec: { address: '10.0.0.9', ports: [{ port: 80 }] } });
    const hy = r.connect(node('sidecar~y', 'y-0'));
    assert.ok(hy);
    await p.settled();
    const yKey = `${prefix}resources/Workload/default/y-0`;
    assert.equal(await leaseOf(client, yKey), '0');
    r.release(hy);
    await until('y-0 out of the registry', 3000, () => (r.list().length === 0 ? true : undefined));
    await p.settled();
    const after = await s.get({ kind: 'Workload', namespace: 'default', name: 'y-0' });
    assert.equal(after?.metadata.resourceVersion, userW.metadata.resourceVersion);
    assert.equal((after?.spec as { address?: string } | undefined)?.address, '10.0.0.9');
    r.close();
  });

  test('admin token: replicas without a token file share the one in etcd; a file token is used and published', async () => {
    const prefix = `/weft-ha-${randomBytes(4).toString('hex')}/`;
    const s = await store(prefix);
    const d1 = await mkdtemp(join(tmp, 'd1-'));
    const d2 = await mkdtemp(join(tmp, 'd2-'));
    const [t1, t2] = await Promise.all([sharedAdminToken(s, d1, log), sharedAdminToken(s, d2, log)]);
    assert.equal(t1, t2);
    assert.equal((await readFile(join(d1, 'admin-token'), 'utf8')).trim(), t1);
    assert.equal((await readFile(join(d2, 'admin-token'), 'utf8')).trim(), t1);

    const prefix2 = `/weft-ha-${randomBytes(4).toString('hex')}/`;
    const s2 = await store(prefix2);
    const d3 = await mkdtemp(join(tmp, 'd3-'));
    const d4 = await mkdtemp(join(tmp, 'd4-'));
    await writeFile(join(d3, 'admin-token'), 'operator-chosen-token\n', { mode: 0o600 });
    assert.equal(await sharedAdminToken(s2, d3, log), 'operator-chosen-token');
    assert.equal(await sharedAdminToken(s2, d4, log), 'operator-chosen-token');
  });
});
