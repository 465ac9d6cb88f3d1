import { createPrivateKey, createPublicKey, webcrypto, type KeyObject } from 'node:crypto';
import { WeftError } from '../errors.js';

/**
 * Keys for the mesh: workloads make ECDSA P-256 keys (the design's choice:
 * small, fast, what Istio and SPIRE use by default). A CA may also hold a
 * P-384 or RSA (≥ 2048 bits) key when an operator supplies one.
 *
 * Keys are WebCrypto CryptoKeys (what @peculiar/x509 and jose sign with) and
 * travel as PEM: PKCS#8 out; PKCS#8, SEC1 (`EC PRIVATE KEY`) or PKCS#1
 * (`RSA PRIVATE KEY`) in, since that is what openssl and other CAs write.
 */
export const subtle = webcrypto.subtle;

// The project compiles without the DOM lib, so WebCrypto's types come from node:crypto.
export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;
export type Algorithm = webcrypto.Algorithm;
export type EcdsaParams = webcrypto.EcdsaParams;
type EcKeyGenParams = webcrypto.EcKeyGenParams;
type EcKeyImportParams = webcrypto.EcKeyImportParams;
type RsaHashedImportParams = webcrypto.RsaHashedImportParams;

export const P256_KEY_ALGORITHM: EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };

/** What a key is, as far as the mesh cares. */
export type KeyDescription =
  | { type: 'ec'; curve: 'P-256' | 'P-384' | 'P-521' | string }
  | { type: 'rsa'; bits: number }
  | { type: 'other'; name: string };

export interface SigningKey {
  privateKey: CryptoKey;
  /** DER SubjectPublicKeyInfo of the matching public key. */
  publicKeySpki: Buffer;
  description: KeyDescription;
  /** Algorithm parameters to sign certificates with (hash included). */
  signingAlgorithm: EcdsaParams | Algorithm;
}

/** A fresh ECDSA P-256 key pair; extractable so the workload can hand its key to node:tls as PEM. */
export async function generateKeyPair(): Promise<CryptoKeyPair> {
  return (await subtle.generateKey(P256_KEY_ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
}

/** PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`) of an extractable private key. */
export async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await subtle.exportKey('pkcs8', key));
  return toPem(der, 'PRIVATE KEY');
}

export function toPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Describe a public key given as DER SubjectPublicKeyInfo. */
export function describeSpki(spki: Uint8Array): KeyDescription {
  return describeKeyObject(createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' }));
}

export function describeKeyObject(k: KeyObject): KeyDescription {
  const d = k.asymmetricKeyDetails ?? {};
  switch (k.asymmetricKeyType) {
    case 'ec':
      return { type: 'ec', curve: curveName(d.namedCurve ?? '') };
    case 'rsa':
      return { type: 'rsa', bits: d.modulusLength ?? 0 };
    default:
      return { type: 'other', name: k.asymmetricKeyType ?? 'unknown' };
  }
}

export function formatKeyDescription(d: KeyDescription): string {
  switch (d.type) {
    case 'ec': return `ECDSA ${d.curve}`;
    case 'rsa': return `RSA ${d.bits}`;
    default: return d.name;
  }
}

function curveName(openssl: string): string {
  switch (openssl) {
    case 'prime256v1': return 'P-256';
    case 'secp384r1': return 'P-384';
    case 'secp521r1': return 'P-521';
    default: return openssl;
  }
}

/**
 * Load a PEM private key (PKCS#8, SEC1 or PKCS#1) as a WebCrypto signing key.
 * `what` names the key in errors (`root key /etc/weft/root-key.pem`).
 * Encrypted keys are refused: the control plane has no way to ask for a passphrase.
 */
export async function importPrivateKeyPem(pem: string, what = 'private key'): Promise<SigningKey> {
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey({ key: pem, format: 'pem' });
  } catch (e) {
    const encrypted = /ENCRYPTED/.test(pem);
    throw new WeftError('WEFT_ERR_INVALID', encrypted
      ? `${what} is encrypted: supply it unencrypted (readable by the control plane only, mode 0600)`
      : `${what} is not a PEM private key (PKCS#8, SEC1 or PKCS#1)`, { cause: e });
  }
  const description = describeKeyObject(keyObject);
  const pkcs8 = keyObject.export({ format: 'der', type: 'pkcs8' });
  const publicKeySpki = createPublicKey(keyObject).export({ format: 'der', type: 'spki' });
  let importAlg: EcKeyImportParams | RsaHashedImportParams;
  let signingAlgorithm: EcdsaParams | Algorithm;
  if (description.type === 'ec' && (description.curve === 'P-256' || description.curve === 'P-384')) {
    importAlg = { name: 'ECDSA', namedCurve: description.curve };
    signingAlgorithm = { name: 'ECDSA', hash: description.curve === 'P-256' ? 'SHA-256' : 'SHA-384' } as EcdsaParams;
  } else if (description.type === 'rsa' && description.bits >= 2048) {
    importAlg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    signingAlgorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as Algorithm;
  } else {
    throw new WeftError('WEFT_ERR_INVALID',
      `${what} is ${formatKeyDescription(description)}: a CA key must be ECDSA P-256, ECDSA P-384 or RSA of at least 2048 bits`);
  }
  const privateKey = await subtle.importKey('pkcs8', pkcs8, importAlg, false, ['sign']);
  return { privateKey, publicKeySpki, description, signingAlgorithm };
}
