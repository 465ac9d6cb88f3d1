import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { isWeftError } from '../errors.js';
import { createCsr, readCsr } from './csr.js';
import { describeSpki, exportPrivateKeyPem, generateKeyPair, importPrivateKeyPem } from './keys.js';
import { splitPem } from './pem.js';

const ID = 'spiffe://cluster.local/ns/default/sa/web';

test('a generated key is ECDSA P-256 and round-trips through PKCS#8 PEM', async () => {
  const keys = await generateKeyPair();
  const pem = await exportPrivateKeyPem(keys.privateKey);
  assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n/);
  const k = createPrivateKey(pem);
  assert.equal(k.asymmetricKeyType, 'ec');
  assert.equal(k.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  const imported = await importPrivateKeyPem(pem);
  assert.deepEqual(imported.description, { type: 'ec', curve: 'P-256' });
});

test('importPrivateKeyPem reads SEC1 and PKCS#1 keys and refuses weak or encrypted ones', async () => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const sec1 = ec.privateKey.export({ type: 'sec1', format: 'pem' }) as string;
  assert.match(sec1, /BEGIN EC PRIVATE KEY/);
  assert.deepEqual((await importPrivateKeyPem(sec1)).description, { type: 'ec', curve: 'P-384' });
  const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const pkcs1 = weak.privateKey.export({ type: 'pkcs1', format: 'pem' }) as string;
  await assert.rejects(importPrivateKeyPem(pkcs1, 'root key k.pem'), (e) => isWeftError(e, 'WEFT_ERR_INVALID') && /root key k.pem is RSA 1024/.test(e.message));
  const enc = ec.privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' }) as string;
  await assert.rejects(importPrivateKeyPem(enc), /is encrypted/);
  await assert.rejects(importPrivateKeyPem('nope'), /not a PEM private key/);
});

test('createCsr carries the SPIFFE ID as the one URI SAN and a valid signature', async () => {
  const keys = await generateKeyPair();
  const pem = await createCsr(keys, ID);
  assert.match(pem, /^-----BEGIN CERTIFICATE REQUEST-----/);
  const info = await readCsr(pem);
  assert.deepEqual(info.uriSans, [ID]);
  assert.deepEqual(info.otherSans, []);
  assert.equal(info.sanExtensions, 1);
  assert.equal(info.signatureValid, true);
  assert.deepEqual(describeSpki(info.publicKeySpki), { type: 'ec', curve: 'P-256' });
});

test('createCsr refuses an invalid SPIFFE ID; readCsr refuses what is not a CSR', async () => {
  const keys = await generateKeyPair();
  await assert.rejects(createCsr(keys, 'spiffe://Bad/x'), (e) => isWeftError(e, 'WEFT_ERR_INVALID'));
  await assert.rejects(readCsr('hello'), (e) => isWeftError(e, 'WEFT_ERR_INVALID'));
  await assert.rejects(readCsr('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n'), (e) => isWeftError(e, 'WEFT_ERR_INVALID'));
});

test('splitPem separates blocks and filters by label', () => {
  const a = '-----BEGIN CERTIFICATE-----\nQQ==\n-----END CERTIFICATE-----';
  const k = '-----BEGIN PRIVATE KEY-----\nQg==\n-----END PRIVATE KEY-----';
  const text = `junk\n${a}\n${k}\n${a}`;
  assert.equal(splitPem(text).length, 3);
  assert.deepEqual(splitPem(text, 'CERTIFICATE'), [`${a}\n`, `${a}\n`]);
});
