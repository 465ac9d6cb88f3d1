import { x509 } from '../../lib/identity/x509.js';
import { WeftError } from '../../lib/errors.js';
import { readCsr } from '../../lib/identity/csr.js';
import { describeSpki, formatKeyDescription } from '../../lib/identity/keys.js';
import { parseSpiffeId } from '../../lib/identity/spiffe.js';
import { recordCoverage } from './bundle.js';
import { CLOCK_SKEW_MS, randomSerial, type CaMaterial } from './root.js';

export interface SignWorkloadOptions {
  /** The SPIFFE ID the caller is entitled to (from its join token or current SVID). */
  spiffeId: string;
  ttlMs: number;
}

export interface IssuedSvid {
  /** The leaf alone. */
  certPem: string;
  /** Leaf then intermediates: what the workload presents in TLS (`cert` of node:tls). */
  chainPem: string;
  notAfter: Date;
  serialNumber: string;
  spiffeId: string;
}

/**
 * Sign a workload's CSR as an X.509-SVID
 * (https://github.com/spiffe/spiffe/blob/main/standards/X509-SVID.md).
 *
 * Only the public key comes from the CSR: every other field of the
 * certificate is the CA's choice, so a request cannot ask for CA rights,
 * extra names or a longer life. Refusals: WEFT_ERR_INVALID for a malformed or
 * badly signed request or a weak key, WEFT_ERR_FORBIDDEN for a request that
 * asks for another identity than the caller holds.
 */
export async function signWorkloadCsr(ca: CaMaterial, csrPem: string, opts: SignWorkloadOptions): Promise<IssuedSvid> {
  const expected = parseSpiffeId(opts.spiffeId);
  if (expected.trustDomain !== ca.trustDomain) {
    throw new WeftError('WEFT_ERR_FORBIDDEN', `${expected.id} is not in this mesh's trust domain ${ca.trustDomain}`);
  }
  if (!Number.isFinite(opts.ttlMs) || opts.ttlMs < 1000) throw new WeftError('WEFT_ERR_INVALID', `certificate lifetime ${opts.ttlMs} ms is too short`);

  const csr = await readCsr(csrPem);
  if (!csr.signatureValid) {
    throw new WeftError('WEFT_ERR_INVALID', 'the certificate request signature does not verify with the key it carries (or uses an unsupported algorithm)');
  }
  const key = describeSpki(csr.publicKeySpki);
  const keyOk = (key.type === 'ec' && key.curve === 'P-256') || (key.type === 'rsa' && key.bits >= 2048);
  if (!keyOk) {
    throw new WeftError('WEFT_ERR_INVALID', `the certificate request has a ${formatKeyDescription(key)} key: use ECDSA P-256 (or RSA of at least 2048 bits)`);
  }
  const asked = [...csr.uriSans, ...csr.otherSans];
  if (csr.sanExtensions !== 1 || asked.length !== 1 || csr.uriSans[0] !== expected.id) {
    const what = asked.length === 0 ? 'no subject alternative name' : asked.join(', ');
    throw new WeftError('WEFT_ERR_FORBIDDEN',
      `the certificate request asks for ${what}, but the caller may only have ${expected.id} (exactly one URI SAN)`);
  }

  const signer = ca.signer;
  const now = ca.now();
  const notAfter = Math.min(now + opts.ttlMs, signer.cert.notAfter.getTime());
  if (notAfter <= now) throw new WeftError('WEFT_ERR_UNAVAILABLE', `the signing certificate expired on ${signer.cert.notAfter.toISOString()}`);
  // Certificate times have second precision: round down so notAfter never passes the signer's.
  const notAfterDate = new Date(Math.floor(notAfter / 1000) * 1000);
  await recordCoverage(ca, signer.rootId, notAfterDate.getTime());

  const serialNumber = randomSerial();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber,
    // X.509-SVID leaves identity to the URI SAN; the subject only helps people reading certificates.
    subject: 'O=Weft',
    issuer: signer.cert.subjectName,
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: notAfterDate,
    publicKey: csr.request.publicKey,
    signingKey: signer.key.privateKey,
    signingAlgorithm: signer.key.signingAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        key.type === 'rsa' ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment : x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: expected.id }], false),
      await x509.SubjectKeyIdentifierExtension.create(csr.request.publicKey),
      new x509.AuthorityKeyIdentifierExtension(signer.keyId, false),
    ],
  });
  const certPem = `${cert.toString('pem').trimEnd()}\n`;
  return {
    certPem,
    chainPem: certPem + signer.chainTailPem.join(''),
    notAfter: notAfterDate,
    serialNumber,
    spiffeId: expected.id,
  };
}
