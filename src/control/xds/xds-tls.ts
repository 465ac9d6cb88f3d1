import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../lib/log.js';
import { createCsr } from '../../lib/identity/csr.js';
import { exportPrivateKeyPem, generateKeyPair } from '../../lib/identity/keys.js';
import { CONTROL_PLANE_NAMESPACE, CONTROL_PLANE_SERVICE_ACCOUNT, controlPlaneSpiffeId } from '../../lib/identity/control-plane-id.js';
import type { CaService } from '../identity/ca-service.js';

type CaListener = grpc.experimental.CaCertificateUpdateListener;
type IdListener = grpc.experimental.IdentityCertificateUpdateListener;

/** The control plane's own SVID lives this long; renewed at half life. */
export const CONTROL_PLANE_CERT_TTL_MS = 24 * 3_600_000;

/**
 * The certificates of the mTLS xDS listener, as a grpc-js CertificateProvider:
 * the trust bundle (client certificates must chain to it) and the control
 * plane's own SVID (`spiffe://<td>/ns/weft-system/sa/weft-control`), made
 * like a workload's: a key in memory, a CSR signed by the mesh CA. The SVID is
 * renewed at half life and the bundle follows root rotations; grpc-js applies
 * both to new connections without rebinding the port.
 */
export class ControlPlaneTls implements grpc.experimental.CertificateProvider {
  private ca?: Buffer;
  private identity?: { certificate: Buffer; privateKey: Buffer };
  private readonly caListeners = new Set<CaListener>();
  private readonly idListeners = new Set<IdListener>();
  private timer?: NodeJS.Timeout;
  private unsubscribe?: () => void;
  private closed = false;
  readonly spiffeId: string;

  private constructor(private readonly svc: CaService, private readonly log?: Logger) {
    this.spiffeId = controlPlaneSpiffeId(svc.trustDomain);
  }

  static async start(svc: CaService, log?: Logger): Promise<ControlPlaneTls> {
    const t = new ControlPlaneTls(svc, log);
    t.setBundle(svc.bundlePem());
    t.unsubscribe = svc.onBundleChange((b) => t.setBundle(b));
    await t.renew();
    return t;
  }

  private setBundle(pem: string): void {
    this.ca = Buffer.from(pem);
    for (const l of this.caListeners) l({ caCertificate: this.ca });
  }

  private async renew(): Promise<void> {
    const keys = await generateKeyPair();
    const csr = await createCsr(keys, this.spiffeId);
    const svid = await this.svc.ca.issueFor({ namespace: CONTROL_PLANE_NAMESPACE, serviceAccount: CONTROL_PLANE_SERVICE_ACCOUNT }, csr, { ttlMs: CONTROL_PLANE_CERT_TTL_MS });
    this.identity = { certificate: Buffer.from(svid.chainPem), privateKey: Buffer.from(await exportPrivateKeyPem(keys.privateKey)) };
    for (const l of this.idListeners) l(this.identity);
    this.log?.info({ spiffeId: svid.spiffeId, notAfter: svid.notAfter.toISOString() }, 'xds: TLS certificate issued');
    if (this.closed) return;
    const halfLife = Math.max(1000, (svid.notAfter.getTime() - Date.now()) / 2);
    this.timer = setTimeout(() => {
      this.renew().catch((err: unknown) => {
        // Keep serving with the current certificate; try again in a minute.
        this.log?.error({ err }, 'xds: renewing the TLS certificate failed');
        if (!this.closed) this.timer = setTimeout(() => void this.renew().catch(() => {}), 60_000).unref();
      });
    }, halfLife);
    this.timer.unref();
  }

  addCaCertificateListener(l: CaListener): void {
    this.caListeners.add(l);
    // Later, not now: grpc-js adds its server as a watcher only after this returns, and would miss it.
    setImmediate(() => {
      if (this.ca !== undefined && this.caListeners.has(l)) l({ caCertificate: this.ca });
    });
  }

  removeCaCertificateListener(l: CaListener): void {
    this.caListeners.delete(l);
  }

  addIdentityCertificateListener(l: IdListener): void {
    this.idListeners.add(l);
    setImmediate(() => {
      if (this.identity !== undefined && this.idListeners.has(l)) l(this.identity);
    });
  }

  removeIdentityCertificateListener(l: IdListener): void {
    this.idListeners.delete(l);
  }

  /** Server credentials that require a client certificate from the mesh CA. */
  serverCredentials(): grpc.ServerCredentials {
    return grpc.experimental.createCertificateProviderServerCredentials(this, this, true);
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.unsubscribe?.();
    this.caListeners.clear();
    this.idListeners.clear();
  }
}
