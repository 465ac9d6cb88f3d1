import { spiffeId } from './spiffe.js';

/**
 * The identity the control plane presents on its mTLS xDS listener
 * (`weft control --xds-tls-addr`): an X.509-SVID from the mesh CA for this
 * namespace and service account. Proxies check the xDS server's certificate
 * against it, in their own trust domain, instead of a host name (SVIDs carry
 * only a URI SAN).
 */
export const CONTROL_PLANE_NAMESPACE = 'weft-system';
export const CONTROL_PLANE_SERVICE_ACCOUNT = 'weft-control';

export function controlPlaneSpiffeId(trustDomain: string): string {
  return spiffeId(trustDomain, CONTROL_PLANE_NAMESPACE, CONTROL_PLANE_SERVICE_ACCOUNT);
}
