/**
 * The client side of mTLS between proxies (UpstreamTlsContext): present this
 * proxy's SVID, verify the server's chain against the trust bundle, and check the
 * server's identity by its URI SAN (the SPIFFE ID) against
 * match_typed_subject_alt_names instead of a host name. A handshake that fails,
 * for any of these reasons, is a connect failure for the caller (flag UF, outlier
 * detection counts it), counted in `cluster.<name>.ssl.*` and logged once per
 * reason with what went wrong.
 */
import { Socket, isIP } from 'node:net';
import { connect as tlsConnect, type PeerCertificate, type TLSSocket } from 'node:tls';
import type { Logger } from '../../lib/log.js';
import type { SanMatcher, UpstreamTlsConfig } from '../config/types.js';
import type { ClusterStats, SslStats } from '../stats.js';
import type { TlsMaterial } from './tls-material.js';

/** What a connect needs besides the address. */
export interface UpstreamTlsContext {
  readonly config: UpstreamTlsConfig;
  readonly material: TlsMaterial;
  readonly cluster: string;
  readonly stats: ClusterStats;
  readonly ssl: SslStats;
  readonly log?: Logger | undefined;
}

/**
 * The connect context of a cluster with an UpstreamTlsContext, or undefined for a
 * plaintext one. Every connection to the cluster (requests, active health checks,
 * mirrors) uses it, so all present the same SVID and check the same SPIFFE IDs.
 */
export function clusterTlsContext(c: { readonly name: string; readonly config: { readonly tls?: UpstreamTlsConfig | undefined }; readonly stats: ClusterStats }, material: TlsMaterial, sslScope: (scope: string) => SslStats, log?: Logger): UpstreamTlsContext | undefined {
  if (c.config.tls === undefined) return undefined;
  return { config: c.config.tls, material, cluster: c.name, stats: c.stats, ssl: sslScope(`cluster.${c.name}`), log };
}

/** node:tls codes of a chain that does not verify (as opposed to a broken handshake). */
const VERIFY_CODES = new Set([
  'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_SIGNATURE_FAILURE', 'CERT_UNTRUSTED', 'CERT_REJECTED', 'INVALID_CA', 'CERT_REVOKED',
]);
export const SAN_MISMATCH = 'WEFT_ERR_TLS_SAN_MISMATCH';

/** URI SANs of a peer certificate (node's `subjectaltname` string). */
export function uriSans(cert: Pick<PeerCertificate, 'subjectaltname'> | undefined): string[] {
  const san = cert?.subjectaltname;
  if (san === undefined || san === '') return [];
  return san.split(', ').filter((p) => p.startsWith('URI:')).map((p) => p.slice(4));
}

export function sanMatches(sans: readonly string[], matchers: readonly SanMatcher[]): boolean {
  if (matchers.length === 0) return true;
  return sans.some((s) => matchers.some((m) => (m.kind === 'exact' ? s === m.value : s.startsWith(m.value))));
}

/** Counts and logs a failed upstream handshake; returns the reason. */
export function reportUpstreamTlsError(t: UpstreamTlsContext, address: string, err: Error & { code?: string }): string {
  const code = err.code ?? '';
  if (code === SAN_MISMATCH) t.ssl.failVerifySan++;
  else if (VERIFY_CODES.has(code)) t.ssl.failVerifyError++;
  else t.ssl.connectionError++;
  const reason = `${code === '' ? '' : `${code}: `}${err.message}`;
  // Under load one misconfiguration fails every connect: one line per cluster and reason per 10 s.
  const key = `${t.cluster}|${reason}`;
  const now = Date.now();
  if ((lastLogged.get(key) ?? 0) + LOG_EVERY_MS <= now) {
    if (lastLogged.size > 1000) lastLogged.clear();
    lastLogged.set(key, now);
    t.log?.warn({ cluster: t.cluster, upstream: address, reason }, 'upstream TLS handshake failed');
  }
  return reason;
}

const LOG_EVERY_MS = 10_000;
const lastLogged = new Map<string, number>();

/**
 * Opens a TLS connection. `alpn` overrides the config's (the h2 pool offers only h2).
 * The returned socket emits `secureConnect` once verified, or `error` (SAN mismatch:
 * code WEFT_ERR_TLS_SAN_MISMATCH). Missing SDS material fails the socket the same way.
 */
export function connectUpstreamTls(host: string, port: number, t: UpstreamTlsContext, alpn?: readonly string[]): TLSSocket | Socket {
  const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  let secureContext;
  try {
    secureContext = t.material.secureContext(t.config);
  } catch (e) {
    // No SVID or bundle yet: an unconnected socket that fails like a refused connect.
    const s = new Socket();
    const err = e as Error & { code?: string };
    queueMicrotask(() => { reportUpstreamTlsError(t, address, err); s.destroy(err); });
    return s;
  }
  const offer = alpn ?? t.config.alpn;
  const servername = t.config.sni ?? (isIP(host) === 0 ? host : undefined);
  const s = tlsConnect({
    host,
    port,
    secureContext,
    ...(servername !== undefined ? { servername } : {}),
    ...(offer.length > 0 ? { ALPNProtocols: [...offer] } : {}),
    rejectUnauthorized: true,
    // Mesh certificates name a SPIFFE ID, not a host: the URI SAN is what identifies the server.
    checkServerIdentity: (_host, cert) => {
      const sans = uriSans(cert);
      if (sanMatches(sans, t.config.sanMatchers)) return undefined;
      const want = t.config.sanMatchers.map((m) => (m.kind === 'exact' ? m.value : `${m.value}*`)).join(' | ');
      return Object.assign(new Error(`server identity ${sans.join(', ') || '(no URI SAN)'} does not match ${want}`), { code: SAN_MISMATCH });
    },
  });
  // HTTP/2 frames go out in several small writes: Nagle would hold them for the peer's delayed ACK.
  s.setNoDelay(true);
  // A refused or timed-out TCP connect is a plain connect failure, not a TLS one.
  let tcpUp = false;
  s.once('connect', () => { tcpUp = true; });
  s.once('secureConnect', () => { t.ssl.handshake++; });
  s.once('error', (err: Error & { code?: string }) => {
    if (tcpUp && !s.authorized) reportUpstreamTlsError(t, address, err);
  });
  return s;
}
