/**
 * xDS over mTLS with the workload certificate (`weft proxy --xds-tls`, `weft run
 * --xds-tls`): each (re)connect of the ADS and telemetry streams presents the current
 * SVID and checks the server against the trust bundle and the control plane's SPIFFE
 * ID in our trust domain. SVIDs carry no host name, so grpc's host name check is
 * replaced by that SPIFFE ID check.
 */
import type { IdentityManager } from '../identity/index.js';
import { WeftError } from '../../lib/errors.js';
import { controlPlaneSpiffeId } from '../../lib/identity/control-plane-id.js';
import { parseSpiffeId } from '../../lib/identity/spiffe.js';

/** Makes the xDS channel credentials (setXdsChannelCredentials) mTLS with `identity`'s SVID. Loads grpc-js. */
export async function useXdsTls(identity: Pick<IdentityManager, 'current'>): Promise<void> {
  const grpc = await import('@grpc/grpc-js');
  const { setXdsChannelCredentials } = await import('./ads-client.js');
  setXdsChannelCredentials(() => {
    const s = identity.current();
    if (s === undefined) throw new WeftError('WEFT_ERR_INTERNAL', 'no workload certificate for the xDS stream');
    const want = `URI:${controlPlaneSpiffeId(parseSpiffeId(s.spiffeId).trustDomain)}`;
    return grpc.credentials.createSsl(Buffer.from(s.bundlePem), Buffer.from(s.keyPem), Buffer.from(s.chainPem), {
      checkServerIdentity: (_host, cert) =>
        (cert.subjectaltname ?? '').split(', ').includes(want) ? undefined : new Error(`the xDS server presents ${cert.subjectaltname ?? 'no SAN'}, not ${want}`),
    });
  });
}
