import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isWeftError } from '../../lib/errors.js';
import { inspectCertificate } from '../../lib/identity/cert.js';
import { createCsr } from '../../lib/identity/csr.js';
import { generateKeyPair } from '../../lib/identity/keys.js';
import { createCertificateAuthority } from './ca.js';

const T0 = Date.parse('2030-01-01T00:00:00Z');
const HOUR = 3_600_000;

test('issueForToken signs for the identity of the token and counts', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-ca-facade-'));
  try {
    const clock = { t: T0 };
    const ca = await createCertificateAuthority(dir, { trustDomain: 'mesh.test', now: () => clock.t });
    const token = await ca.createJoinToken({ namespace: 'shop', serviceAccount: 'cart', ttlMs: HOUR });
    const id = 'spiffe://mesh.test/ns/shop/sa/cart';
    const csr = await createCsr(await generateKeyPair(), id);
    const svid = await ca.issueForToken(token, csr);
    assert.equal(inspectCertificate(svid.certPem).spiffeId, id);
    assert.equal(svid.notAfter.getTime(), T0 + 24 * HOUR);
    const short = await ca.issueForToken(token, csr, { ttlMs: HOUR });
    assert.equal(short.notAfter.getTime(), T0 + HOUR);

    const wrong = await createCsr(await generateKeyPair(), 'spiffe://mesh.test/ns/shop/sa/admin');
    await assert.rejects(ca.issueForToken(token, wrong), (e) => isWeftError(e, 'WEFT_ERR_FORBIDDEN'));
    clock.t += HOUR;
    await assert.rejects(ca.issueForToken(token, csr), (e) => isWeftError(e, 'WEFT_ERR_UNAUTHORIZED') && /expired/.test(e.message));

    const s = ca.stats();
    assert.equal(s.issuedTotal, 2);
    assert.deepEqual(s.refusedTotal, { WEFT_ERR_FORBIDDEN: 1, WEFT_ERR_UNAUTHORIZED: 1 });
    // The 1-hour certificate has just expired: the soonest live one is the 24-hour one.
    assert.equal(s.liveCertificates, 1);
    assert.equal(s.soonestExpiry?.getTime(), T0 + 24 * HOUR);
    assert.equal(s.rootNotAfter.getTime(), s.signerNotAfter.getTime());

    const renewed = await ca.issueFor({ namespace: 'shop', serviceAccount: 'cart' }, csr, { ttlMs: HOUR });
    assert.equal(inspectCertificate(renewed.certPem).spiffeId, id);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a shared joinTokenKey: two CAs in different directories accept each other\'s tokens; a short key is refused', async () => {
  const d1 = await mkdtemp(join(tmpdir(), 'weft-ca-shared-1-'));
  const d2 = await mkdtemp(join(tmpdir(), 'weft-ca-shared-2-'));
  try {
    const key = new Uint8Array(32).fill(7);
    const a = await createCertificateAuthority(d1, { trustDomain: 'mesh.test', joinTokenKey: key });
    const b = await createCertificateAuthority(d2, { trustDomain: 'mesh.test', joinTokenKey: key });
    const token = await a.createJoinToken({ namespace: 'shop', serviceAccount: 'cart' });
    assert.equal((await b.verifyJoinToken(token)).serviceAccount, 'cart');
    const c = await createCertificateAuthority(d2, { trustDomain: 'mesh.test' });
    await assert.rejects(c.verifyJoinToken(token), (e) => isWeftError(e, 'WEFT_ERR_UNAUTHORIZED'));
    await assert.rejects(createCertificateAuthority(d1, { trustDomain: 'mesh.test', joinTokenKey: new Uint8Array(16) }), (e) => isWeftError(e, 'WEFT_ERR_INVALID'));
  } finally {
    await rm(d1, { recursive: true, force: true });
    await rm(d2, { recursive: true, force: true });
  }
});
