/**
 * The TLS secrets one proxy holds, by SDS name, and the SecureContexts built from them.
 *
 * - Certificates (`default` is this proxy's SVID) come from the IdentityManager
 *   (proxy.ts wires its `rotated` event) or, in a worker process, from the primary
 *   over IPC (workers/protocol.ts). Keys live only in memory.
 * - Validation contexts (`ROOTCA` is the mesh trust bundle) come from the same
 *   places and from SDS pushes on the ADS stream.
 * Every change bumps `version`; listeners and pools compare it before a handshake
 * and rebuild their context, so new handshakes use the new SVID while live
 * connections keep the one they negotiated.
 */
import { EventEmitter } from 'node:events';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { WeftError } from '../../lib/errors.js';
import type { TlsCertificateSource, TlsValidationSource } from '../config/types.js';

/** Istio's SDS names, which Weft's control plane uses: this proxy's SVID, and the mesh trust bundle. */
export const SDS_DEFAULT_CERT = 'default';
export const SDS_ROOT_CA = 'ROOTCA';

export interface CertificateSecret {
  /** Leaf then intermediates. */
  readonly certPem: string;
  readonly keyPem: string;
}

/** What crosses the IPC channel to workers (never written to disk). */
export interface TlsMaterialDump {
  readonly certificates: readonly (readonly [string, CertificateSecret])[];
  readonly validations: readonly (readonly [string, string])[];
}

export class TlsMaterial extends EventEmitter {
  private readonly certificates = new Map<string, CertificateSecret>();
  private readonly validations = new Map<string, string>();
  private readonly contexts = new WeakMap<object, Map<string, { version: number; ctx: SecureContext }>>();
  /** Bumped on every change. */
  version = 0;

  setCertificate(name: string, secret: CertificateSecret): void {
    const cur = this.certificates.get(name);
    if (cur?.certPem === secret.certPem && cur.keyPem === secret.keyPem) return;
    this.certificates.set(name, { certPem: secret.certPem, keyPem: secret.keyPem });
    this.changed();
  }

  setValidation(name: string, caPem: string): void {
    if (this.validations.get(name) === caPem) return;
    this.validations.set(name, caPem);
    this.changed();
  }

  certificate(name: string): CertificateSecret | undefined {
    return this.certificates.get(name);
  }

  validation(name: string): string | undefined {
    return this.validations.get(name);
  }

  dump(): TlsMaterialDump {
    return { certificates: [...this.certificates], validations: [...this.validations] };
  }

  /** Replaces everything with a dump from the primary. */
  load(d: TlsMaterialDump): void {
    this.certificates.clear();
    this.validations.clear();
    for (const [n, c] of d.certificates) this.certificates.set(n, c);
    for (const [n, v] of d.validations) this.validations.set(n, v);
    this.changed();
  }

  /**
   * node:tls options for a certificate + validation source; throws
   * WEFT_ERR_UNAVAILABLE naming the missing SDS secret.
   */
  options(cert: TlsCertificateSource | undefined, validation: TlsValidationSource | undefined): SecureContextOptions {
    const o: SecureContextOptions = {};
    if (cert !== undefined) {
      const c = cert.kind === 'inline' ? cert : this.certificates.get(cert.name);
      if (c === undefined) throw new WeftError('WEFT_ERR_UNAVAILABLE', `TLS certificate secret "${(cert as { name: string }).name}" is not available yet`);
      o.cert = c.certPem;
      o.key = c.keyPem;
    }
    if (validation !== undefined) {
      const ca = validation.kind === 'inline' ? validation.caPem : this.validations.get(validation.name);
      if (ca === undefined) throw new WeftError('WEFT_ERR_UNAVAILABLE', `TLS validation secret "${(validation as { name: string }).name}" is not available yet`);
      o.ca = ca;
    }
    return o;
  }

  /**
   * A SecureContext for `owner` (a compiled TLS config), cached until the material
   * changes. `extra` (e.g. ALPN is per socket, so none here) keys the cache too.
   */
  secureContext(owner: { certificate?: TlsCertificateSource | undefined; validation?: TlsValidationSource | undefined }, extra: SecureContextOptions = {}, key = ''): SecureContext {
    let byKey = this.contexts.get(owner);
    if (byKey === undefined) {
      byKey = new Map();
      this.contexts.set(owner, byKey);
    }
    const hit = byKey.get(key);
    if (hit !== undefined && hit.version === this.version) return hit.ctx;
    const ctx = createSecureContext({ ...this.options(owner.certificate, owner.validation), ...extra });
    byKey.set(key, { version: this.version, ctx });
    return ctx;
  }

  private changed(): void {
    this.version++;
    this.emit('change');
  }
}
