/**
 * SDS Secret resources (envoy.extensions.transport_sockets.tls.v3.Secret) pushed on the
 * ADS stream → the proxy's TLS material. Weft's control plane sends `ROOTCA` (the trust
 * bundle; a root rotation pushes a new one); it never sends private keys, but a
 * `tls_certificate` secret is honoured too for other control planes.
 */
import { obj, str } from '../config/proto-values.js';
import type { ProtoJson } from '../config/types.js';
import type { TlsMaterial } from './tls-material.js';

function text(v: unknown, path: string): string {
  const d = obj(v, path);
  if (typeof d.inline_string === 'string') return d.inline_string;
  const b = d.inline_bytes;
  if (Buffer.isBuffer(b) || b instanceof Uint8Array) return Buffer.from(b).toString('utf8');
  if (typeof b === 'string') return Buffer.from(b, 'base64').toString('utf8');
  // A file named by a remote control plane is not something to open.
  throw new Error(`${path}: only inline_string / inline_bytes are accepted over SDS`);
}

export interface ParsedSecret {
  readonly name: string;
  readonly caPem?: string;
  readonly certificate?: { readonly certPem: string; readonly keyPem: string };
}

/** Checks a whole response first (throws with the place: the caller NACKs), so nothing half-applies. */
export function parseSecrets(resources: readonly unknown[]): ParsedSecret[] {
  return resources.map((r, i) => {
    const s = obj(r, `Secret #${i}`);
    const name = str(s.name, `Secret #${i}.name`);
    const at = `Secret ${JSON.stringify(name)}`;
    if (s.validation_context !== undefined) {
      const vc = obj(s.validation_context, `${at}.validation_context`);
      return { name, caPem: text(vc.trusted_ca, `${at}.validation_context.trusted_ca`) };
    }
    if (s.tls_certificate !== undefined) {
      const tc = obj(s.tls_certificate, `${at}.tls_certificate`) as ProtoJson;
      return { name, certificate: { certPem: text(tc.certificate_chain, `${at}.tls_certificate.certificate_chain`), keyPem: text(tc.private_key, `${at}.tls_certificate.private_key`) } };
    }
    throw new Error(`${at}: only validation_context and tls_certificate secrets are supported`);
  });
}

export function applySecrets(m: TlsMaterial, secrets: readonly ParsedSecret[], onBundle?: (name: string, pem: string) => void): void {
  for (const s of secrets) {
    if (s.caPem !== undefined) { m.setValidation(s.name, s.caPem); onBundle?.(s.name, s.caPem); }
    if (s.certificate !== undefined) m.setCertificate(s.name, s.certificate);
  }
}
