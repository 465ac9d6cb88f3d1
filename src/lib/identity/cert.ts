import { x509 } from './x509.js';
import { WeftError } from '../errors.js';
import { OID } from './oids.js';
import { splitPem } from './pem.js';

/** What the mesh reads out of a certificate. */
export interface CertificateInfo {
  subject: string;
  issuer: string;
  /** Hex, as openssl prints it without colons (lowercase). */
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  /** Basic constraints cA; false when the extension is absent. */
  isCa: boolean;
  basicConstraintsCritical: boolean;
  pathLength?: number;
  /** Key usage bit flags (x509.KeyUsageFlags), undefined when absent. */
  keyUsage?: number;
  keyUsageCritical: boolean;
  extKeyUsage: string[];
  uriSans: string[];
  otherSans: string[];
  /** The single URI SAN when it is the only SAN of a spiffe:// form; what peers authenticate. */
  spiffeId?: string;
  subjectKeyId?: string;
  authorityKeyId?: string;
  /** DER SubjectPublicKeyInfo. */
  publicKeySpki: Uint8Array;
  certificate: x509.X509Certificate;
}

/** Parse one PEM (or DER) certificate; throws WEFT_ERR_INVALID naming `what` when it is not one. */
export function parseCertificate(pemOrDer: string | Uint8Array, what = 'certificate'): x509.X509Certificate {
  try {
    if (typeof pemOrDer === 'string') {
      const blocks = splitPem(pemOrDer, 'CERTIFICATE');
      if (blocks.length !== 1) throw new Error(`expected one CERTIFICATE block, found ${blocks.length}`);
      return new x509.X509Certificate(blocks[0] as string);
    }
    return new x509.X509Certificate(pemOrDer);
  } catch (e) {
    throw new WeftError('WEFT_ERR_INVALID', `${what} is not a PEM X.509 certificate`, { cause: e });
  }
}

/** All certificates of a PEM bundle, in order. */
export function parseCertificates(pem: string, what = 'certificate bundle'): x509.X509Certificate[] {
  return splitPem(pem, 'CERTIFICATE').map((b, i) => parseCertificate(b, `${what} [${i}]`));
}

export function inspectCertificate(cert: string | x509.X509Certificate): CertificateInfo {
  const c = typeof cert === 'string' ? parseCertificate(cert) : cert;
  const bc = c.getExtension(x509.BasicConstraintsExtension);
  const ku = c.getExtension(x509.KeyUsagesExtension);
  const eku = c.getExtension(x509.ExtendedKeyUsageExtension);
  const ski = c.getExtension(x509.SubjectKeyIdentifierExtension);
  const aki = c.getExtension(x509.AuthorityKeyIdentifierExtension);
  const uriSans: string[] = [];
  const otherSans: string[] = [];
  for (const ext of c.extensions.filter((e) => e.type === OID.subjectAltName)) {
    for (const n of new x509.SubjectAlternativeNameExtension(ext.rawData).names.items) {
      if (n.type === 'url') uriSans.push(n.value);
      else otherSans.push(`${n.type}:${n.value}`);
    }
  }
  const info: CertificateInfo = {
    subject: c.subject,
    issuer: c.issuer,
    serialNumber: c.serialNumber.toLowerCase(),
    notBefore: c.notBefore,
    notAfter: c.notAfter,
    isCa: bc?.ca ?? false,
    basicConstraintsCritical: bc?.critical ?? false,
    keyUsageCritical: ku?.critical ?? false,
    extKeyUsage: Array.from(eku?.usages ?? [], String),
    uriSans,
    otherSans,
    publicKeySpki: new Uint8Array(c.publicKey.rawData),
    certificate: c,
  };
  if (bc?.pathLength !== undefined) info.pathLength = bc.pathLength;
  if (ku !== null) info.keyUsage = ku.usages;
  if (ski !== null) info.subjectKeyId = ski.keyId.toLowerCase();
  if (aki?.keyId !== undefined) info.authorityKeyId = aki.keyId.toLowerCase();
  if (uriSans.length === 1 && otherSans.length === 0 && uriSans[0]?.startsWith('spiffe://')) info.spiffeId = uriSans[0];
  return info;
}
