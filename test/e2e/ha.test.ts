// Many control-plane replicas on etcd, all real processes: a 3-member etcd
// cluster on loopback, two `weft control --store etcd://...` replicas (A, B)
// with their own data directories, sidecars spread over them, two apps.
// Readiness is always a line a process prints or a condition polled with a
// deadline; loads are bounded. Skipped, with the reason printed, without etcd.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openEtcdStore, type EtcdStore } from '../../src/store/etcd/etcd-store.js';
import { createLogger } from '../../src/lib/log.js';
import { etcdSkipReason, startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';
import { startApp, viaProxy, type App, type Reply } from './helpers/http.js';
import { killAll, runWeft, startWeft, stderrTails, stop, until, type Running } from './helpers/procs.js';
import { route, services } from './helpers/catalog-yaml.js';

const skip = etcdSkipReason();
if (skip !== undefined) process.stdout.write(`# skipping the HA e2e test: ${skip}\n`);

const CONTROL_READY = /^weft control ready: api=(\S+) xds=(\S+) data=(\S+)$/;
const PROXY_READY = /^weft proxy ready: admin=(\S+) outbound=(\S+) node=(\S+)$/;
const PREFIX = '/weft-e2e-ha/';
/** Short so that the expiry test is quick; production default is 10 s. */
const LEASE_TTL_S = 3;
/**
 * How long traffic must keep flowing with every control plane down: 60 s, as issue 9
 * asks. `WEFT_HA_OUTAGE_SECONDS` shortens it for quick local runs (docs/ha.md).
 */
const STATIC_WINDOW_MS = Math.max(1, Number(process.env.WEFT_HA_OUTAGE_SECONDS ?? '') || 60) * 1000;

interface Replica {
  run: Running;
  api: string;
  xds: string;
  dataDir: string;
}

let tmp: string;
let cluster: EtcdCluster | undefined;
let store: EtcdStore | undefined;
let a: Replica;
let b: Replica;
let v1: App;
let v2: App;
let webA: { run: Running; admin: string; outbound: string; node: string };
let webB: { run: Running; admin: string; outbound: string; node: string };
let v1Proxy: Running;
const agent = new Agent({ keepAlive: true, maxSockets: 8 });
let failed = false;

function step(name: string, fn: () => Promise<void>): void {
  test(name, async () => {
    try {
      await fn();
    } catch (e) {
      failed = true;
      throw e;
    }
  });
}

async function startReplica(name: string): Promise<Replica> {
  assert.ok(cluster);
  const dataDir = join(tmp, name);
  const store = `etcd://${cluster.endpoints.map((u) => new URL(u).host).join(',')}`;
  const { run, match } = await startWeft(`weft control ${name}`, [
    'control', '--data-dir', dataDir, '--api-addr', '127.0.0.1:0', '--xds-addr', '127.0.0.1:0',
    '--store', store, '--store-prefix', PREFIX, '--lease-ttl', String(LEASE_TTL_S), '--log-level', 'warn',
  ], CONTROL_READY, { home: tmp, timeoutMs: 30_000 });
  return { run, api: match[1]!, xds: match[2]!, dataDir };
}

function startProxy(name: string, xds: string[], args: readonly string[]): Promise<{ run: Running; match: RegExpExecArray }> {
  return startWeft(`weft proxy ${name}`, [
    'proxy', '--xds', xds.join(','), '--namespace', 'default',
    '--admin-addr', '127.0.0.1:0', '--outbound-addr', '127.0.0.1:0', '--log-level', 'warn', ...args,
  ], PROXY_READY, { home: tmp });
}

async function weft(r: Replica, args: readonly string[], input?: string): Promise<string> {
  const res = await runWeft([...args, '--server', r.api, '--data-dir', r.dataDir], { home: tmp, ...(input !== undefined ? { input } : {}) });
  assert.equal(res.code, 0, `weft ${args.join(' ')} (server ${r.api}) failed:\n${res.stderr}`);
  return res.stdout;
}

async function applyViaApi(r: Replica, yaml: string): Promise<void> {
  const token = (await readFile(join(r.dataDir, 'admin-token'), 'utf8')).trim();
  const res = await fetch(`${r.api}/apply`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/yaml' }, body: yaml });
  assert.equal(res.status, 200, await res.text());
}

/** Node ids SYNCED on all four types in `weft proxy-status --server R`. */
async function syncedOn(r: Replica): Promise<Set<string>> {
  const out = JSON.parse(await weft(r, ['proxy-status', '-o', 'json'])) as { items: { nodeId: string; sync: Record<string, { state: string }> }[] };
  return new Set(out.items.filter((i) => ['CDS', 'LDS', 'EDS', 'RDS'].every((t) => i.sync[t]?.state === 'SYNCED')).map((i) => i.nodeId));
}

const who = (rep: Reply): string => (rep.status === 200 ? rep.body : `${rep.status} ${String(rep.headers['x-weft-response-flags'] ?? '')}`);

/** Sends requests to catalog through `outbound`, `concurrency` at a time, until `stopWhen` resolves (bounded by `maxMs`). */
async function loadUntil(outbound: string, stopWhen: Promise<unknown>, maxMs: number, concurrency = 4): Promise<{ total: number; failures: string[] }> {
  let done = false;
  void stopWhen.finally(() => (done = true));
  const end = Date.now() + maxMs;
  const failures: string[] = [];
  let total = 0;
  const worker = async (): Promise<void> => {
    while (!done && Date.now() < end) {
      total++;
      try {
        const r = await viaProxy(outbound, 'http://catalog.default/', agent);
        if (r.status !== 200) failures.push(who(r));
      } catch (e) {
        failures.push(e instanceof Error ? e.message : String(e));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { total, failures };
}

async function registeredWorkloads(): Promise<string[]> {
  assert.ok(store);
  const { items } = await store.list({ kind: 'Workload' });
  return items.filter((w) => w.metadata.annotations?.['weft.dev/registered-by'] !== undefined).map((w) => w.metadata.name);
}

before(async () => {
  if (skip !== undefined) return;
  failed = true;
  tmp = await mkdtemp(join(tmpdir(), 'weft-ha-e2e-'));
  cluster = await startEtcdCluster({ members: 3, dataDir: join(tmp, 'etcd') });
  store = await openEtcdStore({ endpoints: cluster.endpoints, prefix: PREFIX, logger: createLogger('test', 'silent'), requestTimeoutMs: 5000 });
  [a, b] = await Promise.all([startReplica('a'), startReplica('b')]);
  [v1, v2] = await Promise.all([startApp('v1'), startApp('v2')]);
  await weft(a, ['apply', '-f', '-'], services(v1.port, v2.port));
  await weft(b, ['apply', '-f', '-'], route(50, 50));
  // v1's sidecar registers through A only; the two client sidecars prefer A and B.
  v1Proxy = (await startProxy('catalog-v1', [a.xds], ['--service', 'catalog-v1', '--workload-port', String(v1.port)])).run;
  const [pa, pb] = await Promise.all([
    startProxy('web-a', [a.xds, b.xds], ['--service', 'web', '--node-id', 'web-a']),
    startProxy('web-b', [b.xds, a.xds], ['--service', 'web', '--node-id', 'web-b']),
  ]);
  webA = { run: pa.run, admin: pa.match[1]!, outbound: pa.match[2]!, node: pa.match[3]! };
  webB = { run: pb.run, admin: pb.match[1]!, outbound: pb.match[2]!, node: pb.match[3]! };
  await until('both versions reachable through both client sidecars', 20_000, async () => {
    const rs = await Promise.all([webA, webB].flatMap((w) => [viaProxy(w.outbound, 'http://catalog-v1.default/', agent), viaProxy(w.outbound, 'http://catalog-v2.default/', agent)]));
    return rs.map((r) => r.body).join() === 'v1,v2,v1,v2' ? true : undefined;
  });
  failed = false;
});

after(async () => {
  agent.destroy();
  const tails = failed ? stderrTails() : '';
  if (tails !== '') process.stdout.write(tails.replace(/^/gm, '# ') + '\n');
  await Promise.all([v1?.close(), v2?.close()]);
  await killAll();
  await store?.close();
  await cluster?.stop();
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
});

describe('weft control: two replicas on a 3-member etcd', { skip, concurrency: false }, () => {
  step('both replicas accept the same admin token and serve the same objects', async () => {
    const [ta, tb] = await Promise.all([readFile(join(a.dataDir, 'admin-token'), 'utf8'), readFile(join(b.dataDir, 'admin-token'), 'utf8')]);
    assert.equal(ta, tb);
    assert.equal(await weft(a, ['get', 'httproutes', '-o', 'name']), await weft(b, ['get', 'httproutes', '-o', 'name']));
    // The sidecar registered through A is a Workload every replica serves.
    assert.ok((await registeredWorkloads()).some((n) => n.startsWith('catalog-v1-')), `registered: ${(await registeredWorkloads()).join(', ')}`);
    assert.ok((await syncedOn(a)).has(webA.node));
    assert.ok((await syncedOn(b)).has(webB.node));
    // Exactly one replica leads.
    const leaders = await Promise.all([a, b].map(async (r) => /^weft_control_leader 1$/m.test(await (await fetch(`${r.api}/metrics`, { headers: { authorization: `Bearer ${ta.trim()}` } })).text())));
    assert.equal(leaders.filter(Boolean).length, 1, `leader flags: ${leaders.join(',')}`);
  });

  step('a route applied through A reaches a proxy connected to B within 1 s', async () => {
    const t0 = Date.now();
    await applyViaApi(a, route(0, 100));
    const ms = await until('every request through web-b (on B) answered by v2', 5000, async () => {
      const rs = await Promise.all(Array.from({ length: 10 }, () => viaProxy(webB.outbound, 'http://catalog.default/', agent)));
      return rs.every((r) => who(r) === 'v2') ? Date.now() - t0 : undefined;
    }, 0);
    process.stdout.write(`# change applied through A in force on a proxy connected to B after ${ms} ms\n`);
    assert.ok(ms <= 1000, `took ${ms} ms`);
    // B's own view of that proxy's config has it too.
    const token = (await readFile(join(b.dataDir, 'admin-token'), 'utf8')).trim();
    const cfg = await (await fetch(`${b.api}/xds/clients/${encodeURIComponent(webB.node)}/config`, { headers: { authorization: `Bearer ${token}` } })).text();
    assert.match(cfg, /catalog-v2/);
  });

  let killedAt = 0;
  step('replica A killed (-9) under load through a proxy on A: zero failed requests, the proxy on B within 5 s', async () => {
    assert.ok((await syncedOn(a)).has(webA.node), 'web-a is on A before the kill');
    let onB: number | undefined;
    const moved = (async () => {
      // Let the load run a moment before the kill (bounded by requests, not time).
      const before = v2.served;
      await until('load under way', 5000, () => Promise.resolve(v2.served > before + 20 ? true : undefined), 5);
      killedAt = Date.now();
      assert.equal(await stop(a.run, 'SIGKILL'), 'SIGKILL');
      await until('web-a SYNCED on B', 10_000, async () => ((await syncedOn(b)).has(webA.node) ? true : undefined), 100);
      onB = Date.now() - killedAt;
    })();
    const load = await loadUntil(webA.outbound, moved, 20_000);
    await moved;
    process.stdout.write(`# web-a on B ${onB} ms after A was killed; ${load.total} requests during the failover, ${load.failures.length} failed\n`);
    assert.deepEqual(load.failures, []);
    assert.ok(load.total > 50, `only ${load.total} requests`);
    assert.ok(onB !== undefined && onB <= 5000, `took ${onB} ms`);
  });

  step('the workload registered through A (its sidecar knows no other replica) disappears after the lease TTL', async () => {
    const name = await until('the catalog-v1 registration to expire', 15_000, async () => {
      const names = await registeredWorkloads();
      return names.some((n) => n.startsWith('catalog-v1-')) ? undefined : Date.now() - killedAt;
    }, 100);
    process.stdout.write(`# registration through the killed replica gone ${name} ms after the kill (lease TTL ${LEASE_TTL_S} s)\n`);
    assert.ok(name >= (LEASE_TTL_S - 1) * 1000, `gone after ${name} ms: earlier than the lease allows`);
    // The sidecars that failed over to B keep theirs... and B is now the leader.
    const token = (await readFile(join(b.dataDir, 'admin-token'), 'utf8')).trim();
    await until('B to lead', 10_000, async () => (/^weft_control_leader 1$/m.test(await (await fetch(`${b.api}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text()) ? true : undefined), 100);
    await stop(v1Proxy, 'SIGKILL');
  });

  step('one etcd member killed: weft apply through B still succeeds', async () => {
    assert.ok(cluster);
    await cluster.killMember(0);
    await weft(b, ['apply', '-f', '-'], route(0, 100).replace('metadata: {name: catalog, namespace: default}', 'metadata: {name: catalog, namespace: default, labels: {edited: "yes"}}'));
    assert.ok(store);
    const r = await store.get({ kind: 'HTTPRoute', namespace: 'default', name: 'catalog' });
    assert.equal(r?.metadata.labels?.edited, 'yes');
  });

  step(`every control plane stopped: traffic keeps flowing for ${STATIC_WINDOW_MS / 1000} s`, async () => {
    assert.equal(await stop(b.run, 'SIGKILL'), 'SIGKILL');
    const window = new Promise((r) => setTimeout(r, STATIC_WINDOW_MS));
    type Status = { xds: { connected: boolean; lastUpdate: string | null } | null; servingLastGoodConfig: boolean };
    const status = async (admin: string): Promise<Status> => (await (await fetch(`${admin}/status`)).json()) as Status;
    const gauge = async (admin: string): Promise<string | undefined> => /^weft_proxy_xds_connected (\d)$/m.exec(await (await fetch(`${admin}/metrics`)).text())?.[1];
    // While the load runs: both sidecars say they lost the control plane and serve their last good config.
    const observed = (async () => {
      for (const w of [webA, webB]) {
        await until(`${w.node}: /status connected false`, Math.min(STATIC_WINDOW_MS, 10_000), async () => ((await status(w.admin)).xds?.connected === false ? true : undefined), 100);
        const st = await status(w.admin);
        assert.equal(st.servingLastGoodConfig, true, `${w.node}: ${JSON.stringify(st)}`);
        assert.ok(st.xds?.lastUpdate !== null, `${w.node}: ${JSON.stringify(st)}`);
        assert.equal(await gauge(w.admin), '0', `${w.node}: weft_proxy_xds_connected`);
      }
    })().then(() => undefined, (e: unknown) => e); // rethrown below, after the load
    const [la, lb] = await Promise.all([loadUntil(webA.outbound, window, STATIC_WINDOW_MS + 5000, 2), loadUntil(webB.outbound, window, STATIC_WINDOW_MS + 5000, 2)]);
    const notSeen = await observed;
    if (notSeen !== undefined) throw notSeen;
    process.stdout.write(`# no control plane for ${STATIC_WINDOW_MS} ms: ${la.total + lb.total} requests, ${la.failures.length + lb.failures.length} failed\n`);
    assert.deepEqual([...la.failures, ...lb.failures], []);
    assert.ok(la.total > 100 && lb.total > 100);
    // Still disconnected at the end of the window, and saying so.
    for (const w of [webA, webB]) {
      assert.equal((await status(w.admin)).xds?.connected, false);
      assert.equal(await gauge(w.admin), '0');
    }
  });
});
