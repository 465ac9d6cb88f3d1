import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isWeftError } from '../../lib/errors.js';
import { inspectCertificate } from '../../lib/identity/cert.js';
import { exportPrivateKeyPem, generateKeyPair, type Algorithm } from '../../lib/identity/keys.js';
import { x509 } from '../../lib/identity/x509.js';
import { generateRoot, loadOrCreateCa } from './root.js';

const T0 = Date.parse('2030-01-01T00:00:00Z');
const DAY = 86_400_000;

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'weft-ca-root-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A CA (or not) certificate signed by `issuer`, for supplied-material tests. */
async function makeCert(opts: { issuerCertPem: string; issuerKeyPem: string; ca: boolean; subject: string; notBefore: number; notAfter: number }): Promise<{ certPem: string; keyPem: string }> {
  const { importPrivateKeyPem } = await import('../../lib/identity/keys.js');
  const issuer = new x509.X509Certificate(opts.issuerCertPem);
  const signing = await importPrivateKeyPem(opts.issuerKeyPem);
  const keys = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.create({
    subject: opts.subject,
    issuer: issuer.subjectName,
    notBefore: new Date(opts.notBefore),
    notAfter: new Date(opts.notAfter),
    publicKey: keys.publicKey,
    signingKey: signing.privateKey,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as Algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(opts.ca, undefined, true),
      new x509.KeyUsagesExtension(opts.ca ? x509.KeyUsageFlags.keyCertSign : x509.KeyUsageFlags.digitalSignature, true),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

test('first start makes a root with the X.509 profile asked for; later starts reuse it', () =>
  withDir(async (dir) => {
    const ca = await loadOrCreateCa(dir, { trustDomain: 'cluster.local', now: () => T0 });
    assert.equal(ca.source, 'generated');
    const info = inspectCertificate(ca.roots[0]!.certPem);
    assert.equal(info.subject, 'O=Weft, CN=Weft Root CA cluster.local');
    assert.equal(info.issuer, info.subject);
    assert.equal(info.isCa, true);
    assert.equal(info.basicConstraintsCritical, true);
    assert.equal(info.keyUsage, x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    assert.equal(info.keyUsageCritical, true);
    assert.ok(info.subjectKeyId !== undefined && info.subjectKeyId === info.authorityKeyId);
    assert.equal(info.notBefore.getTime(), T0 - 60_000);
    assert.equal(info.notAfter.getTime(), T0 + 3653 * DAY);
    assert.equal(info.serialNumber.replace(/^00/, '').length, 32);
    assert.equal((await stat(join(dir, 'ca'))).mode & 0o777, 0o700);
    for (const f of ['root-key.pem', 'root-cert.pem', 'roots.json', 'bundle.pem']) {
      assert.equal((await stat(join(dir, 'ca', f))).mode & 0o777, 0o600, f);
    }
    const again = await loadOrCreateCa(dir, { trustDomain: 'cluster.local', now: () => T0 + DAY });
    assert.equal(again.roots[0]!.certPem, ca.roots[0]!.certPem);
    assert.equal(await readFile(join(dir, 'ca', 'bundle.pem'), 'utf8'), ca.roots[0]!.certPem);
  }));

test('a certificate without its key is refused; a key without its certificate is replaced', () =>
  withDir(async (dir) => {
    await loadOrCreateCa(dir, { trustDomain: 'td', now: () => T0 });
    await unlink(join(dir, 'ca', 'roots.json'));
    await unlink(join(dir, 'ca', 'root-key.pem'));
    await assert.rejects(loadOrCreateCa(dir, { trustDomain: 'td', now: () => T0 }), /root-cert.pem exists but .*root-key.pem does not/);
    await unlink(join(dir, 'ca', 'root-cert.pem'));
    await writeFile(join(dir, 'ca', 'root-key.pem'), 'half-written', { mode: 0o600 });
    const ca = await loadOrCreateCa(dir, { trustDomain: 'td', now: () => T0 });
    assert.equal(ca.roots.length, 1);
  }));

test('an invalid trust domain is refused', () =>
  withDir(async (dir) => {
    await assert.rejects(loadOrCreateCa(dir, { trustDomain: 'Bad.Domain' }), (e) => isWeftError(e, 'WEFT_ERR_INVALID'));
  }));

test('supplied root with key: used as is; mismatched key, expiry and non-CA are refused clearly', () =>
  withDir(async (dir) => {
    const root = await generateRoot('corp.example', 1, T0);
    const other = await generateRoot('corp.example', 1, T0);
    await writeFile(join(dir, 'root.pem'), root.certPem);
    await writeFile(join(dir, 'root.key'), root.keyPem);
    await writeFile(join(dir, 'other.key'), other.keyPem);
    const ok = await loadOrCreateCa(dir, { trustDomain: 'corp.example', now: () => T0, supplied: { rootCertFile: join(dir, 'root.pem'), rootKeyFile: join(dir, 'root.key') } });
    assert.equal(ok.source, 'supplied');
    assert.deepEqual(ok.signer.chainTailPem, []);

    await assert.rejects(
      loadOrCreateCa(dir, { trustDomain: 'corp.example', now: () => T0, supplied: { rootCertFile: join(dir, 'root.pem'), rootKeyFile: join(dir, 'other.key') } }),
      (e) => isWeftError(e, 'WEFT_ERR_INVALID') && /other.key does not match root certificate/.test(e.message));
    await assert.rejects(
      loadOrCreateCa(dir, { trustDomain: 'corp.example', now: () => T0 + 3700 * DAY, supplied: { rootCertFile: join(dir, 'root.pem'), rootKeyFile: join(dir, 'root.key') } }),
      /expired on/);
    await assert.rejects(
      loadOrCreateCa(dir, { trustDomain: 'corp.example', now: () => T0, supplied: { rootCertFile: join(dir, 'missing.pem'), rootKeyFile: join(dir, 'root.key') } }),
      /missing.pem does not exist/);
    const leaf = await makeCert({ issuerCertPem: root.certPem, issuerKeyPem: root.keyPem, ca: false, subject: 'CN=leaf', notBefore: T0 - DAY, notAfter: T0 + DAY });
    await writeFile(join(dir, 'leaf.pem'), leaf.certPem);
    await writeFile(join(dir, 'leaf.key'), leaf.keyPem);
    await assert.rejects(
      loadOrCreateCa(dir, { trustDomain: 'corp.example', now: () => T0, supplied: { rootCertFile: join(dir, 'root.pem'), intermediateCertFile: join(dir, 'leaf.pem'), intermediateKeyFile: join(dir, 'leaf.key') } }),
      /leaf.pem is not a CA certificate/);
  }));

test('supplied root + intermediate: the intermediate signs and joins the chain; a foreign intermediate is refused', () =>
  withDir(async (dir) => {
    const root = await generateRoot('corp.example', 1, T0);
    const inter = await makeCert({ issuerCertPem: root.certPem, issuerKeyPem: root.keyPem, ca: true, subject: 'O=Corp, CN=Mesh Intermediate', notBefore: T0 - DAY, notAfter: T0 + 365 * DAY });
    const stranger = await generateRoot('other', 1, T0);
    const foreign = await makeCert({ issuerCertPem: stranger.certPem, issuerKeyPem: stranger.keyPem, ca: true, subject: 'CN=Foreign', notBefore: T0 - DAY, notAfter: T0 + DAY });
    await writeFile(join(dir, 'root.pem'), root.certPem);
    await writeFile(join(dir, 'inter.pem'), inter.certPem);
    await writeFile(join(dir, 'inter.key'), inter.keyPem);
    await writeFile(join(dir, 'foreign.pem'), foreign.certPem);
    await writeFile(join(dir, 'foreign.key'), foreign.keyPem);
    const ca = await loadOrCreateCa(dir, { trustDomain: 'corp.example', now: () => T0, supplied: { rootCertFile: join(dir, 'root.pem'), intermediateCertFile: join(dir, 'inter.pem'), intermediateKeyFile: join(dir, 'inter.key') } });
    assert.equal(ca.signer.cert.subject, 'O=Corp, CN=Mesh Intermediate');
    assert.equal(ca.signer.chainTailPem.length, 1);
    assert.equal(ca.roots.length, 1);
    assert.equal(ca.roots[0]!.key, undefined);
    await assert.rejects(
      loadOrCreateCa(dir, { trustDomain: 'corp.example', now: () => T0, supplied: { rootCertFile: join(dir, 'root.pem'), intermediateCertFile: join(dir, 'foreign.pem'), intermediateKeyFile: join(dir, 'foreign.key') } }),
      /foreign.pem is not signed by root certificate/);
    // The intermediate given as the root: not self-signed.
    await assert.rejects(
      loadOrCreateCa(dir, { trustDomain: 'corp.example', now: () => T0, supplied: { rootCertFile: join(dir, 'inter.pem'), rootKeyFile: join(dir, 'inter.key') } }),
      /is not self-signed/);
  }));
