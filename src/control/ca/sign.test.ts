import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isWeftError } from '../../lib/errors.js';
import { inspectCertificate } from '../../lib/identity/cert.js';
import { createCsr } from '../../lib/identity/csr.js';
import { generateKeyPair, type Algorithm, type CryptoKeyPair } from '../../lib/identity/keys.js';
import { x509 } from '../../lib/identity/x509.js';
import { loadOrCreateCa, type CaMaterial } from './root.js';
import { signWorkloadCsr } from './sign.js';

const T0 = Date.parse('2030-01-01T00:00:00Z');
const HOUR = 3_600_000;
const WEB = 'spiffe://cluster.local/ns/default/sa/web';

async function withCa(fn: (ca: CaMaterial, clock: { t: number }) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'weft-ca-sign-'));
  const clock = { t: T0 };
  try {
    await fn(await loadOrCreateCa(dir, { trustDomain: 'cluster.local', now: () => clock.t }), clock);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('issues an X.509-SVID: one URI SAN, CA:false, digitalSignature, server+client auth, AKI, skewed notBefore', () =>
  withCa(async (ca) => {
    const csr = await createCsr(await generateKeyPair(), WEB);
    const svid = await signWorkloadCsr(ca, csr, { spiffeId: WEB, ttlMs: 24 * HOUR });
    const info = inspectCertificate(svid.certPem);
    assert.deepEqual(info.uriSans, [WEB]);
    assert.deepEqual(info.otherSans, []);
    assert.equal(info.spiffeId, WEB);
    assert.equal(info.isCa, false);
    assert.equal(info.basicConstraintsCritical, true);
    assert.equal(info.keyUsage, x509.KeyUsageFlags.digitalSignature);
    assert.equal(info.keyUsageCritical, true);
    assert.deepEqual(info.extKeyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    assert.equal(info.authorityKeyId, inspectCertificate(ca.signer.certPem).subjectKeyId);
    assert.equal(info.notBefore.getTime(), T0 - 60_000);
    assert.equal(info.notAfter.getTime(), T0 + 24 * HOUR);
    assert.equal(svid.notAfter.getTime(), T0 + 24 * HOUR);
    assert.equal(svid.chainPem, svid.certPem);
    assert.equal(await info.certificate.verify({ publicKey: ca.signer.cert.publicKey, signatureOnly: true }), true);
    const again = await signWorkloadCsr(ca, csr, { spiffeId: WEB, ttlMs: HOUR });
    assert.notEqual(again.serialNumber, svid.serialNumber);
  }));

test('notAfter never passes the signing certificate', () =>
  withCa(async (ca, clock) => {
    clock.t = ca.signer.cert.notAfter.getTime() - HOUR;
    const csr = await createCsr(await generateKeyPair(), WEB);
    const svid = await signWorkloadCsr(ca, csr, { spiffeId: WEB, ttlMs: 24 * HOUR });
    assert.ok(svid.notAfter.getTime() <= ca.signer.cert.notAfter.getTime());
    assert.ok(svid.notAfter.getTime() > clock.t + HOUR - 2000);
  }));

test('a CSR for another identity is refused with WEFT_ERR_FORBIDDEN naming both', () =>
  withCa(async (ca) => {
    const other = 'spiffe://cluster.local/ns/default/sa/admin';
    const csr = await createCsr(await generateKeyPair(), other);
    await assert.rejects(signWorkloadCsr(ca, csr, { spiffeId: WEB, ttlMs: HOUR }),
      (e) => isWeftError(e, 'WEFT_ERR_FORBIDDEN') && e.message.includes(other) && e.message.includes(WEB));
  }));

test('CSRs with no SAN, several SANs or a DNS SAN are refused', () =>
  withCa(async (ca) => {
    const keys = await generateKeyPair();
    const make = async (names: { type: 'url' | 'dns'; value: string }[] | undefined) => (await x509.Pkcs10CertificateRequestGenerator.create({
      keys,
      name: 'CN=x',
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as Algorithm,
      extensions: names === undefined ? [] : [new x509.SubjectAlternativeNameExtension(names)],
    })).toString('pem');
    for (const names of [undefined, [{ type: 'url' as const, value: WEB }, { type: 'url' as const, value: WEB }], [{ type: 'url' as const, value: WEB }, { type: 'dns' as const, value: 'web' }]]) {
      await assert.rejects(signWorkloadCsr(ca, await make(names), { spiffeId: WEB, ttlMs: HOUR }), (e) => isWeftError(e, 'WEFT_ERR_FORBIDDEN'), JSON.stringify(names));
    }
  }));

test('a tampered CSR and weak or unexpected keys are refused with WEFT_ERR_INVALID', () =>
  withCa(async (ca) => {
    const csr = await createCsr(await generateKeyPair(), WEB);
    // Flip a byte inside the signature (the end of the DER).
    const der = Buffer.from(csr.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
    der[der.length - 5]! ^= 0x01;
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    await assert.rejects(signWorkloadCsr(ca, tampered, { spiffeId: WEB, ttlMs: HOUR }), (e) => isWeftError(e, 'WEFT_ERR_INVALID') && /does not verify/.test(e.message));

    for (const [alg, params, hash, expect] of [
      ['ECDSA', { name: 'ECDSA', namedCurve: 'P-384' }, 'SHA-384', /ECDSA P-384 key/],
      ['RSASSA-PKCS1-v1_5', { name: 'RSASSA-PKCS1-v1_5', modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, 'SHA-256', /RSA 1024 key/],
    ] as const) {
      const keys = (await crypto.subtle.generateKey(params, true, ['sign', 'verify'])) as CryptoKeyPair;
      const req = await x509.Pkcs10CertificateRequestGenerator.create({
        keys,
        signingAlgorithm: { name: alg, hash } as Algorithm,
        extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: WEB }])],
      });
      await assert.rejects(signWorkloadCsr(ca, req.toString('pem'), { spiffeId: WEB, ttlMs: HOUR }), (e) => isWeftError(e, 'WEFT_ERR_INVALID') && expect.test(e.message));
    }
    await assert.rejects(signWorkloadCsr(ca, 'garbage', { spiffeId: WEB, ttlMs: HOUR }), (e) => isWeftError(e, 'WEFT_ERR_INVALID'));
  }));

test('an RSA 2048 CSR is accepted and gets keyEncipherment too', () =>
  withCa(async (ca) => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keys = {
      privateKey: await crypto.subtle.importKey('pkcs8', privateKey.export({ type: 'pkcs8', format: 'der' }), { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['sign']),
      publicKey: await crypto.subtle.importKey('spki', publicKey.export({ type: 'spki', format: 'der' }), { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, true, ['verify']),
    } as CryptoKeyPair;
    const req = await x509.Pkcs10CertificateRequestGenerator.create({
      keys,
      signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as Algorithm,
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: WEB }])],
    });
    const info = inspectCertificate((await signWorkloadCsr(ca, req.toString('pem'), { spiffeId: WEB, ttlMs: HOUR })).certPem);
    assert.equal(info.keyUsage, x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment);
  }));

test('an identity outside the trust domain is refused', () =>
  withCa(async (ca) => {
    const id = 'spiffe://elsewhere/ns/default/sa/web';
    const csr = await createCsr(await generateKeyPair(), id);
    await assert.rejects(signWorkloadCsr(ca, csr, { spiffeId: id, ttlMs: HOUR }), (e) => isWeftError(e, 'WEFT_ERR_FORBIDDEN'));
  }));
