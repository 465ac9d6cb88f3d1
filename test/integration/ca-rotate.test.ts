// Root rotation through the HTTP API and the CLI (issue 6 item 7): a real control plane
// in this process (API and xDS on port 0), a raw ADS client subscribed to ROOTCA as a
// proxy is, `weft ca show|rotate` as the built binary, certificates checked with
// `openssl verify` against each root. A second control plane with operator-supplied
// root files (made by `openssl req`) refuses to rotate, and so does a replica on a real
// etcd (replicas each have their own CA directory, so a rotation would reach one only).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startControlPlane, type ControlPlane } from '../../src/control/control-plane.js';
import type { CaStatus } from '../../src/control/identity/ca-rotation.js';
import { createCsr } from '../../src/lib/identity/csr.js';
import { generateKeyPair } from '../../src/lib/identity/keys.js';
import { killAll, runWeft, type Result } from '../e2e/helpers/procs.js';
import { etcdSkipReason, startEtcdCluster } from '../helpers/etcd.js';
import { eventually, RawAdsClient, type DiscoveryResponse } from './xds-helpers.js';

const run = promisify(execFile);
const OPENSSL = '/usr/bin/openssl';
const SECRET = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';
const NODE = 'rotate-probe';

let tmp: string;
let cp: ControlPlane;
let supplied: ControlPlane;
let ads: RawAdsClient;

async function openssl(args: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    const { stdout, stderr } = await run(OPENSSL, args, { cwd: tmp });
    return { ok: true, out: stdout + stderr };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    return { ok: false, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

function weft(target: ControlPlane, args: string[]): Promise<Result> {
  return runWeft(['--server', target.apiUrl, '--token', target.adminToken, ...args], { home: tmp, timeoutMs: 30_000 });
}

async function status(target: ControlPlane): Promise<CaStatus> {
  const res = await fetch(`${target.apiUrl}/ca/status`);
  assert.equal(res.status, 200);
  return (await res.json()) as CaStatus;
}

async function rotateHttp(target: ControlPlane, body: unknown): Promise<{ status: number; body: { reason?: string; message?: string } }> {
  const res = await fetch(`${target.apiUrl}/ca/rotate`, {
    method: 'POST',
    headers: { authorization: `Bearer ${target.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as { reason?: string; message?: string } };
}

function pemBlocks(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
}

function bundleOf(r: DiscoveryResponse): string {
  assert.deepEqual(r.resources.map((x) => x.name), ['ROOTCA']);
  const vc = r.resources[0]!.validation_context as { trusted_ca: { inline_bytes: Uint8Array } };
  return Buffer.from(vc.trusted_ca.inline_bytes).toString('utf8');
}

/** A workload certificate as a proxy gets one: join token, own key, CSR, POST /ca/certificates. Written to `name`. */
async function issue(name: string): Promise<string> {
  const tok = await fetch(`${cp.apiUrl}/ca/tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${cp.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ namespace: 'shop', serviceAccount: 'web', ttl: '10m' }),
  });
  assert.equal(tok.status, 201);
  const { token } = (await tok.json()) as { token: string };
  const csr = await createCsr(await generateKeyPair(), 'spiffe://cluster.local/ns/shop/sa/web');
  const res = await fetch(`${cp.apiUrl}/ca/certificates`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ csr }),
  });
  assert.equal(res.status, 200);
  const { certificateChain } = (await res.json()) as { certificateChain: string };
  await writeFile(join(tmp, name), certificateChain);
  return name;
}

/** The one line a refused CLI command prints. */
function oneErrorLine(r: Result): string {
  assert.equal(r.code, 1, `exit code; stdout: ${r.stdout} stderr: ${r.stderr}`);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^error: /);
  return lines[0]!;
}

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'weft-ca-rotate-'));
  cp = await startControlPlane({ dataDir: join(tmp, 'data'), apiAddr: '127.0.0.1:0', xdsAddr: '127.0.0.1:0', logLevel: 'silent', xdsDebounceMs: 10 });
  // The operator's own root, made by openssl: a P-256 CA certificate and its key.
  const made = await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'op-key.pem', '-out', 'op-cert.pem',
    '-days', '30', '-subj', '/O=Example/CN=Example Mesh Root', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  assert.ok(made.ok, made.out);
  supplied = await startControlPlane({
    dataDir: join(tmp, 'data-supplied'), apiAddr: '127.0.0.1:0', xdsAddr: '127.0.0.1:0', logLevel: 'silent',
    caSupplied: { rootCertFile: join(tmp, 'op-cert.pem'), rootKeyFile: join(tmp, 'op-key.pem') },
  });
  ads = new RawAdsClient(cp.xdsAddress, NODE);
});

after(async () => {
  ads?.close();
  await killAll();
  await cp?.close();
  await supplied?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('weft ca / the /ca/status and /ca/rotate API', () => {
  let firstRoot: string;

  test('show: one generated root that signs, its fingerprint as openssl computes it', async () => {
    const s = await status(cp);
    assert.equal(s.phase, 'steady');
    assert.equal(s.source, 'generated');
    assert.equal(s.roots.length, 1);
    assert.equal(s.roots[0]!.signing, true);
    assert.equal(s.workloadTtl.duration, '24h');
    assert.equal(s.workloadTtl.source, 'mesh');
    assert.equal(s.propagation?.clients, 0);
    firstRoot = await (await fetch(`${cp.apiUrl}/ca/bundle`)).text();
    await writeFile(join(tmp, 'root1.pem'), firstRoot);
    const fp = await openssl(['x509', '-in', 'root1.pem', '-noout', '-fingerprint', '-sha256']);
    assert.ok(fp.ok, fp.out);
    assert.equal(fp.out.trim().split('=')[1], s.roots[0]!.fingerprintSha256);

    const table = await weft(cp, ['ca', 'show']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^Trust domain: +cluster\.local$/m);
    assert.match(table.stdout, /^Rotation: +steady$/m);
    assert.match(table.stdout, /^Workload TTL: +24h \(Mesh\)$/m);
    assert.match(table.stdout, /^ROOT +SIGNS +SUBJECT +NOT BEFORE +NOT AFTER +SERIAL +SHA-256$/m);
    assert.match(table.stdout, new RegExp(`^root +yes +O=Weft, CN=Weft Root CA cluster\\.local .* ${s.roots[0]!.fingerprintSha256}$`, 'm'));
    const json = await weft(cp, ['ca', 'show', '-o', 'json']);
    assert.equal(json.code, 0, json.stderr);
    assert.equal((JSON.parse(json.stdout) as CaStatus).roots[0]!.fingerprintSha256, s.roots[0]!.fingerprintSha256);
    const yaml = await weft(cp, ['ca', 'show', '-o', 'yaml']);
    assert.equal(yaml.code, 0, yaml.stderr);
    assert.match(yaml.stdout, /^phase: steady$/m);
  });

  test('writes need the admin token; a bad step is refused', async () => {
    const res = await fetch(`${cp.apiUrl}/ca/rotate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"step":"add"}' });
    assert.equal(res.status, 401);
    const bad = await rotateHttp(cp, { step: 'sideways' });
    assert.equal(bad.body.reason, 'WEFT_ERR_INVALID');
    const cli = await weft(cp, ['ca', 'rotate', 'sideways']);
    assert.equal(cli.code, 2, cli.stderr);
    assert.equal((await status(cp)).roots.length, 1, 'nothing changed');
  });

  test('a proxy-style ADS client holds the one-root bundle; a certificate issued now chains to it', async () => {
    ads.send({ type_url: SECRET, resource_names: ['ROOTCA'] });
    const first = await ads.next(SECRET);
    assert.equal(pemBlocks(bundleOf(first)).length, 1);
    ads.ack(first, ['ROOTCA']);
    await eventually(async () => (await status(cp)).propagation?.current === 1 || undefined, 'the probe ACKs ROOTCA');
    await issue('leaf1.pem');
    const v = await openssl(['verify', '-CAfile', 'root1.pem', 'leaf1.pem']);
    assert.ok(v.ok, v.out);
    const s = await status(cp);
    assert.equal(s.certificates.issuedTotal, 1);
    assert.ok(s.certificates.earliestExpiry !== undefined && Date.parse(s.certificates.earliestExpiry) > Date.now());
  });

  test('rotate add: two roots in the bundle, pushed to the ADS client; the old root still signs', async () => {
    const r = await weft(cp, ['ca', 'rotate', 'add']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^root root-g2 joined the trust bundle; root still signs/);
    const pushed = await ads.next(SECRET, 10_000);
    const blocks = pemBlocks(bundleOf(pushed));
    assert.equal(blocks.length, 2, 'ROOTCA carries both roots');
    assert.equal(pemBlocks(await (await fetch(`${cp.apiUrl}/ca/bundle`)).text()).length, 2);
    await writeFile(join(tmp, 'root2.pem'), blocks[1]!);
    const s = await status(cp);
    assert.equal(s.phase, 'added');
    assert.deepEqual(s.roots.map((x) => [x.id, x.signing]), [['root', true], ['root-g2', false]]);

    // Another add while one is in progress: a clear 409, nothing changes.
    const again = await rotateHttp(cp, { step: 'add' });
    assert.equal(again.status, 409);
    assert.match(again.body.message ?? '', /rotation is in progress/);

    // Promote before the proxy ACKed the new bundle: refused, naming it.
    const early = oneErrorLine(await weft(cp, ['ca', 'rotate', 'promote']));
    assert.match(early, /cannot promote yet: 1 of 1 proxies do not hold the new trust bundle \(rotate-probe\)/);
    assert.equal((await status(cp)).phase, 'added');

    ads.ack(pushed, ['ROOTCA']);
    await eventually(async () => (await status(cp)).propagation?.current === 1 || undefined, 'the probe ACKs the two-root bundle');
  });

  test('rotate promote: new certificates chain to the new root only', async () => {
    const r = await weft(cp, ['ca', 'rotate', 'promote']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^root root-g2 signs workload certificates now/);
    const s = await status(cp);
    assert.equal(s.phase, 'promoted');
    assert.deepEqual(s.roots.map((x) => [x.id, x.signing]), [['root', false], ['root-g2', true]]);
    await issue('leaf2.pem');
    const good = await openssl(['verify', '-CAfile', 'root2.pem', 'leaf2.pem']);
    assert.ok(good.ok, good.out);
    const old = await openssl(['verify', '-CAfile', 'root1.pem', 'leaf2.pem']);
    assert.equal(old.ok, false, 'the old root does not sign any more');
    // The certificate issued before the rotation still verifies: the old root is still in the bundle.
    await writeFile(join(tmp, 'bundle.pem'), await (await fetch(`${cp.apiUrl}/ca/bundle`)).text());
    const still = await openssl(['verify', '-CAfile', 'bundle.pem', 'leaf1.pem']);
    assert.ok(still.ok, still.out);
    const twice = await rotateHttp(cp, { step: 'promote' });
    assert.equal(twice.status, 409);
  });

  test('rotate retire: refused while the old root\'s certificates may be valid, done with --force', async () => {
    const early = oneErrorLine(await weft(cp, ['ca', 'rotate', 'retire']));
    assert.match(early, /cannot retire yet: certificates signed by the old root may still be valid \(root until \S+Z\); retry then, or force/);
    const http = await rotateHttp(cp, { step: 'retire' });
    assert.equal(http.status, 409);
    assert.equal(http.body.reason, 'WEFT_ERR_CONFLICT');
    assert.equal((await status(cp)).roots.length, 2, 'nothing retired');

    const r = await weft(cp, ['ca', 'rotate', 'retire', '--force']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^retired root from the trust bundle \(forced\)/);
    const pushed = await ads.next(SECRET, 10_000);
    const blocks = pemBlocks(bundleOf(pushed));
    assert.equal(blocks.length, 1, 'ROOTCA carries the new root alone');
    assert.equal(blocks[0], pemBlocks(await (await fetch(`${cp.apiUrl}/ca/bundle`)).text())[0]);
    await writeFile(join(tmp, 'bundle-after.pem'), blocks[0]!);
    const v = await openssl(['verify', '-CAfile', 'bundle-after.pem', 'leaf2.pem']);
    assert.ok(v.ok, v.out);
    const s = await status(cp);
    assert.equal(s.phase, 'steady');
    assert.deepEqual(s.roots.map((x) => [x.id, x.signing]), [['root-g2', true]]);
  });

  test('a control plane with supplied root files refuses every step, with one clear line', async () => {
    const s = await status(supplied);
    assert.equal(s.source, 'supplied');
    assert.equal(s.roots[0]!.subject, 'O=Example, CN=Example Mesh Root');
    const table = await weft(supplied, ['ca', 'show']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^Root source: +supplied files$/m);
    const line = oneErrorLine(await weft(supplied, ['ca', 'rotate', 'add']));
    assert.match(line, /^error: cannot add: this control plane uses supplied CA files \(--ca-cert\/--ca-key\); rotate the root by supplying new files$/);
    for (const step of ['promote', 'retire']) {
      const res = await rotateHttp(supplied, { step, force: true });
      assert.equal(res.status, 409, step);
    }
    assert.equal((await status(supplied)).roots.length, 1);
  });
});

describe('a replica on etcd', { skip: etcdSkipReason() }, () => {
  test('refuses to rotate (replicas would disagree) and says what to do instead', async () => {
    const cluster = await startEtcdCluster({ members: 1, dataDir: join(tmp, 'etcd') });
    let replica: ControlPlane | undefined;
    try {
      replica = await startControlPlane({
        dataDir: join(tmp, 'data-replica'), apiAddr: '127.0.0.1:0', xdsAddr: '127.0.0.1:0', logLevel: 'silent', etcd: { endpoints: cluster.endpoints, leaseTtlSeconds: 5 },
      });
      const s = await status(replica);
      assert.equal(s.replicated, true);
      assert.match(s.next, /giving every replica the same new --ca-cert\/--ca-key files/);
      const line = oneErrorLine(await weft(replica, ['ca', 'rotate', 'add']));
      assert.match(line, /^error: cannot add: replicas share this store \(etcd\)/);
      assert.equal((await status(replica)).roots.length, 1);
    } finally {
      await replica?.close();
      await cluster.stop();
    }
  });
});
