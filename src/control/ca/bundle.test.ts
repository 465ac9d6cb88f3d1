import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isWeftError } from '../../lib/errors.js';
import { parseCertificates } from '../../lib/identity/cert.js';
import { createCsr } from '../../lib/identity/csr.js';
import { generateKeyPair } from '../../lib/identity/keys.js';
import { generateRoot, loadOrCreateCa } from './root.js';
import { bundlePem, promoteRoot, retireRoot, rotateRoot } from './bundle.js';
import { signWorkloadCsr } from './sign.js';

const T0 = Date.parse('2030-01-01T00:00:00Z');
const HOUR = 3_600_000;
const WEB = 'spiffe://cluster.local/ns/default/sa/web';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'weft-ca-bundle-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('rotate adds a root to the bundle, promote switches signing, retire waits for the old leaves', () =>
  withDir(async (dir) => {
    const clock = { t: T0 };
    const ca = await loadOrCreateCa(dir, { trustDomain: 'cluster.local', now: () => clock.t });
    const oldRoot = ca.roots[0]!;
    const csr = await createCsr(await generateKeyPair(), WEB);
    await signWorkloadCsr(ca, csr, { spiffeId: WEB, ttlMs: 24 * HOUR });

    const fresh = await rotateRoot(ca);
    assert.equal(fresh.cert.subject, 'O=Weft, CN=Weft Root CA cluster.local G2');
    assert.equal(ca.signer.rootId, oldRoot.id, 'the old root still signs');
    assert.equal(parseCertificates(bundlePem(ca)).length, 2);
    assert.equal(await readFile(join(dir, 'ca', 'bundle.pem'), 'utf8'), bundlePem(ca));
    await assert.rejects(rotateRoot(ca), (e) => isWeftError(e, 'WEFT_ERR_CONFLICT'));
    await assert.rejects(retireRoot(ca), /not been promoted yet/);

    // A restart in the middle of a rotation sees the same state.
    const reopened = await loadOrCreateCa(dir, { trustDomain: 'cluster.local', now: () => clock.t });
    assert.equal(bundlePem(reopened), bundlePem(ca));
    assert.equal(reopened.signer.rootId, oldRoot.id);

    clock.t += HOUR;
    await promoteRoot(ca);
    assert.equal(ca.signer.rootId, fresh.id);
    await assert.rejects(promoteRoot(ca), /no new root to promote/);
    const leaf = await signWorkloadCsr(ca, csr, { spiffeId: WEB, ttlMs: 24 * HOUR });
    assert.equal(parseCertificates(leaf.certPem)[0]!.issuer, fresh.cert.subject);

    // The old root signed a leaf valid until T0+24h: it stays until then.
    const early = await retireRoot(ca);
    assert.deepEqual(early.retired, []);
    assert.equal(early.waiting.length, 1);
    assert.ok(early.waiting[0]!.until.getTime() >= T0 + 24 * HOUR);
    assert.equal(ca.roots.length, 2);

    clock.t = early.waiting[0]!.until.getTime();
    const done = await retireRoot(ca);
    assert.deepEqual(done.retired, [oldRoot.id]);
    assert.equal(parseCertificates(bundlePem(ca)).length, 1);
    const files = await readdir(join(dir, 'ca'));
    assert.ok(!files.includes('root-key.pem') && !files.includes('root-cert.pem'), files.join(' '));

    const after = await loadOrCreateCa(dir, { trustDomain: 'cluster.local', now: () => clock.t });
    assert.equal(after.signer.rootId, fresh.id);
    assert.equal(bundlePem(after), bundlePem(ca));
    // And the next rotation makes generation 3.
    assert.equal((await rotateRoot(after)).cert.subject, 'O=Weft, CN=Weft Root CA cluster.local G3');
  }));

test('retire with force drops the old root at once', () =>
  withDir(async (dir) => {
    const ca = await loadOrCreateCa(dir, { trustDomain: 'td', now: () => T0 });
    await signWorkloadCsr(ca, await createCsr(await generateKeyPair(), 'spiffe://td/ns/a/sa/b'), { spiffeId: 'spiffe://td/ns/a/sa/b', ttlMs: HOUR });
    await rotateRoot(ca);
    await promoteRoot(ca);
    assert.deepEqual((await retireRoot(ca, { force: true })).retired, ['root']);
  }));

test('supplied CA material cannot be rotated here', () =>
  withDir(async (dir) => {
    const root = await generateRoot('td', 1, T0);
    await writeFile(join(dir, 'r.pem'), root.certPem);
    await writeFile(join(dir, 'r.key'), root.keyPem);
    const ca = await loadOrCreateCa(dir, { trustDomain: 'td', now: () => T0, supplied: { rootCertFile: join(dir, 'r.pem'), rootKeyFile: join(dir, 'r.key') } });
    await assert.rejects(rotateRoot(ca), (e) => isWeftError(e, 'WEFT_ERR_CONFLICT') && /supplied/.test(e.message));
  }));
