// The CA across control-plane replicas on one etcd: two `weft control` replicas
// given the same CA files (--ca-cert/--ca-key) hand out the same trust bundle,
// accept each other's join tokens (the HMAC key is shared through etcd) and
// issue certificates that verify against either bundle. A third replica
// without CA files starts, accepts the shared tokens, and warns that its root
// differs. Skipped, with the reason printed, without etcd.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateRoot } from '../../src/control/ca/root.js';
import { createCsr } from '../../src/lib/identity/csr.js';
import { generateKeyPair } from '../../src/lib/identity/keys.js';
import { etcdSkipReason, startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';
import { killAll, runWeft, startWeft, stderrTails, type Running } from './helpers/procs.js';

const skip = etcdSkipReason() ?? (spawnSync('openssl', ['version']).status === 0 ? undefined : 'openssl not installed');
if (skip !== undefined) process.stdout.write(`# skipping the HA CA e2e test: ${skip}\n`);

const CONTROL_READY = /^weft control ready: api=(\S+) xds=(\S+) data=(\S+)$/;
const PREFIX = '/weft-e2e-ha-ca/';
const ID = 'spiffe://cluster.local/ns/default/sa/web';

interface Replica {
  run: Running;
  api: string;
  dataDir: string;
}

let tmp: string;
let cluster: EtcdCluster | undefined;
let a: Replica;
let b: Replica;
let caCert: string;
let caKey: string;
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

async function startReplica(name: string, extra: readonly string[]): Promise<Replica> {
  assert.ok(cluster);
  const dataDir = join(tmp, name);
  const store = `etcd://${cluster.endpoints.map((u) => new URL(u).host).join(',')}`;
  const { run, match } = await startWeft(`weft control ${name}`, [
    'control', '--data-dir', dataDir, '--api-addr', '127.0.0.1:0', '--xds-addr', '127.0.0.1:0',
    '--store', store, '--store-prefix', PREFIX, '--lease-ttl', '3', '--log-level', 'warn', ...extra,
  ], CONTROL_READY, { home: tmp, timeoutMs: 30_000 });
  return { run, api: match[1]!, dataDir };
}

async function tokenThrough(r: Replica): Promise<string> {
  const res = await runWeft(['--server', r.api, '--data-dir', r.dataDir, 'token', 'create', '--namespace', 'default', '--service-account', 'web'], { home: tmp });
  assert.equal(res.code, 0, res.stderr);
  return res.stdout.trim();
}

async function requestCertificate(r: Replica, token: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const keys = await generateKeyPair();
  const csr = await createCsr(keys, ID);
  const res = await fetch(`${r.api}/ca/certificates`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ csr }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function bundleOf(r: Replica): Promise<string> {
  const res = await fetch(`${r.api}/ca/bundle`);
  assert.equal(res.status, 200);
  return res.text();
}

function leafOf(chain: unknown): string {
  const text = Array.isArray(chain) ? chain.join('') : String(chain);
  const m = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/.exec(text);
  assert.ok(m, 'the chain holds a certificate');
  return m[0];
}

async function opensslVerify(name: string, leafPem: string, bundlePem: string): Promise<{ status: number | null; out: string }> {
  const leaf = join(tmp, `${name}-leaf.pem`);
  const bundle = join(tmp, `${name}-bundle.pem`);
  await writeFile(leaf, leafPem);
  await writeFile(bundle, bundlePem);
  const r = spawnSync('openssl', ['verify', '-CAfile', bundle, leaf], { encoding: 'utf8', timeout: 10_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

before(async () => {
  if (skip !== undefined) return;
  failed = true;
  tmp = await mkdtemp(join(tmpdir(), 'weft-ha-ca-e2e-'));
  cluster = await startEtcdCluster({ members: 1, dataDir: join(tmp, 'etcd') });
  // The operator's CA, made with the CA code: the same two files go to every replica.
  const root = await generateRoot('cluster.local', 1, Date.now(), 30 * 86_400_000);
  caCert = join(tmp, 'root-cert.pem');
  caKey = join(tmp, 'root-key.pem');
  await writeFile(caCert, root.certPem);
  await writeFile(caKey, root.keyPem, { mode: 0o600 });
  const caArgs = ['--ca-cert', caCert, '--ca-key', caKey];
  // One after the other: the first start creates the shared keys in etcd.
  a = await startReplica('a', caArgs);
  b = await startReplica('b', caArgs);
  failed = false;
});

after(async () => {
  const tails = failed ? stderrTails() : '';
  if (tails !== '') process.stdout.write(tails.replace(/^/gm, '# ') + '\n');
  await killAll();
  await cluster?.stop();
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
});

describe('weft control: the CA across two replicas on etcd', { skip, concurrency: false }, () => {
  step('both replicas serve the same trust bundle, the supplied root', async () => {
    const [ba, bb] = await Promise.all([bundleOf(a), bundleOf(b)]);
    assert.equal(ba, bb);
    assert.match(ba, /BEGIN CERTIFICATE/);
    assert.equal(ba.match(/BEGIN CERTIFICATE/g)?.length, 1);
    assert.doesNotMatch(a.run.stderr() + b.run.stderr(), /without --ca-cert|DIFFERS/);
  });

  step('a join token made through A gets a certificate from B, which verifies against both bundles', async () => {
    const token = await tokenThrough(a);
    const res = await requestCertificate(b, token);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.spiffeId, ID);
    const leaf = leafOf(res.body.certificateChain);
    for (const [name, r] of [['a', a], ['b', b]] as const) {
      const v = await opensslVerify(`from-b-${name}`, leaf, await bundleOf(r));
      assert.equal(v.status, 0, v.out);
    }
  });

  step('a certificate issued by A verifies against B\'s bundle (openssl verify)', async () => {
    const token = await tokenThrough(b);
    const res = await requestCertificate(a, token);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const v = await opensslVerify('from-a', leafOf(res.body.certificateChain), await bundleOf(b));
    assert.equal(v.status, 0, v.out);
    assert.match(v.out, /OK/);
  });

  step('a forged token is refused by both', async () => {
    const token = await tokenThrough(a);
    const parts = token.split('.');
    const forged = `${parts[0]}.${parts[1]}.${Buffer.from('x'.repeat(32)).toString('base64url')}`;
    for (const r of [a, b]) assert.equal((await requestCertificate(r, forged)).status, 401);
  });

  step('a replica without CA files starts, accepts the shared tokens, and warns that its root differs', async () => {
    const c = await startReplica('c', []);
    // Its warnings are written during start, before the ready line.
    assert.match(c.run.stderr(), /without --ca-cert\/--ca-key/);
    assert.match(c.run.stderr(), /ROOT DIFFERS FROM THE ONE RECORDED IN ETCD/);
    assert.notEqual(await bundleOf(c), await bundleOf(a));
    const res = await requestCertificate(c, await tokenThrough(a));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    // …and what it issues does not verify against the shared root: the warning is right.
    const v = await opensslVerify('from-c', leafOf(res.body.certificateChain), await bundleOf(a));
    assert.notEqual(v.status, 0, v.out);
  });
});
