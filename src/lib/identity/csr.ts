import { x509 } from './x509.js';
import { WeftError } from '../errors.js';
import type { CryptoKeyPair, EcdsaParams } from './keys.js';
import { OID } from './oids.js';
import { parseSpiffeId } from './spiffe.js';

/**
 * PKCS#10 certificate requests. A workload makes its key locally and sends
 * only this request: it carries the public key and, as its single URI SAN, the
 * SPIFFE ID the workload asks for. The CA decides what it really gets.
 */

/** A PEM CSR for `spiffeId`, signed with `keys` (ECDSA P-256 from generateKeyPair()). */
export async function createCsr(keys: CryptoKeyPair, spiffeId: string): Promise<string> {
  parseSpiffeId(spiffeId);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }], false)],
  });
  return csr.toString('pem');
}

export interface CsrInfo {
  /** DER SubjectPublicKeyInfo. */
  publicKeySpki: Uint8Array;
  /** Every name of the requested SAN extension, as `type:value` for non-URIs. */
  uriSans: string[];
  otherSans: string[];
  /** Number of SAN extensions requested (a well-formed request has at most one). */
  sanExtensions: number;
  /** Whether the request is signed by the private key of the key it carries. */
  signatureValid: boolean;
  /** The parsed request, to read further. */
  request: x509.Pkcs10CertificateRequest;
}

/** Parse a PEM CSR; throws WEFT_ERR_INVALID when it is not one. Does not judge it: see CsrInfo. */
export async function readCsr(pem: string): Promise<CsrInfo> {
  let request: x509.Pkcs10CertificateRequest;
  try {
    if (!/-----BEGIN (NEW )?CERTIFICATE REQUEST-----/.test(pem)) throw new Error('no CERTIFICATE REQUEST block');
    request = new x509.Pkcs10CertificateRequest(pem);
  } catch (e) {
    throw new WeftError('WEFT_ERR_INVALID', 'the certificate request is not a PEM PKCS#10 CSR', { cause: e });
  }
  let signatureValid = false;
  try {
    signatureValid = await request.verify();
  } catch {
    // An algorithm WebCrypto cannot verify counts as not verified.
    signatureValid = false;
  }
  const sanExts = request.extensions.filter((e) => e.type === OID.subjectAltName);
  const uriSans: string[] = [];
  const otherSans: string[] = [];
  for (const ext of sanExts) {
    let names: readonly x509.GeneralName[];
    try {
      names = new x509.SubjectAlternativeNameExtension(ext.rawData).names.items;
    } catch (e) {
      // otherName, X.400 and EDI names cannot be read; they have no place in an SVID anyway.
      throw new WeftError('WEFT_ERR_INVALID', 'the certificate request has a subject alternative name of an unsupported kind', { cause: e });
    }
    for (const n of names) {
      if (n.type === 'url') uriSans.push(n.value);
      else otherSans.push(`${n.type}:${n.value}`);
    }
  }
  return {
    publicKeySpki: new Uint8Array(request.publicKey.rawData),
    uriSans,
    otherSans,
    sanExtensions: sanExts.length,
    signatureValid,
    request,
  };
}
