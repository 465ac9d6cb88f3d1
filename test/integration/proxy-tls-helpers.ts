// Helpers for the proxy mTLS tests: certificates from Weft's real CA code, Envoy TLS
// transport sockets (inline PEM or SDS names), a tiny TLS-aware listener builder and curl.
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createCertificateAuthority, type CertificateAuthority } from '../../src/control/ca/ca.js';
import { createCsr } from '../../src/lib/identity/csr.js';
import { exportPrivateKeyPem, generateKeyPair } from '../../src/lib/identity/keys.js';
import { hcm } from '../fixtures/proxy/helpers.js';

const TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3';

export interface Issued {
  readonly certPem: string;
  readonly keyPem: string;
  readonly spiffeId: string;
  readonly serial: string;
  /** Files for curl: cert, key, and the CA bundle that issued it. */
  readonly files: { cert: string; key: string; ca: string };
}

export interface TestCa {
  readonly ca: CertificateAuthority;
  readonly bundlePem: string;
  /** Shifts the CA's clock (ms) to issue already-expired certificates. */
  setSkew(ms: number): void;
  issue(ns: string, sa: string, ttlMs?: number): Promise<Issued>;
}

let issued = 0;

/** A key made here, a CSR, and the SVID the CA signs for it (files written for curl). */
export async function issueFrom(ca: CertificateAuthority, dir: string, ns: string, sa: string, ttlMs?: number): Promise<Issued> {
  const keys = await generateKeyPair();
  const spiffeId = `spiffe://${ca.trustDomain}/ns/${ns}/sa/${sa}`;
  const svid = await ca.issueFor({ namespace: ns, serviceAccount: sa }, await createCsr(keys, spiffeId), ttlMs === undefined ? {} : { ttlMs });
  const keyPem = await exportPrivateKeyPem(keys.privateKey);
  const base = join(dir, `${ca.trustDomain}-${ns}-${sa}-${issued++}`);
  const files = { cert: `${base}.crt`, key: `${base}.key`, ca: `${base}.ca` };
  await writeFile(files.cert, svid.chainPem);
  await writeFile(files.key, keyPem, { mode: 0o600 });
  await writeFile(files.ca, ca.bundlePem());
  return { certPem: svid.chainPem, keyPem, spiffeId, serial: svid.serialNumber, files };
}

export async function makeCa(dir: string, trustDomain: string): Promise<TestCa> {
  let skew = 0;
  const ca = await createCertificateAuthority(await mkdtemp(join(dir, `ca-${trustDomain}-`)), { trustDomain, now: () => Date.now() + skew });
  return {
    ca,
    bundlePem: ca.bundlePem(),
    setSkew: (ms) => { skew = ms; },
    issue: (ns, sa, ttlMs) => issueFrom(ca, dir, ns, sa, ttlMs),
  };
}

type Cert = { certPem: string; keyPem: string } | 'sds';

function common(cert: Cert | undefined, caPem: string | 'sds', alpn: string[] | undefined, sans?: string[]): Record<string, unknown> {
  const c: Record<string, unknown> = {};
  if (cert === 'sds') c.tls_certificate_sds_secret_configs = [{ name: 'default', sds_config: { ads: {}, resource_api_version: 'V3' } }];
  else if (cert !== undefined) c.tls_certificates = [{ certificate_chain: { inline_string: cert.certPem }, private_key: { inline_string: cert.keyPem } }];
  const matchers = (sans ?? []).map((id) => ({ san_type: 'URI', matcher: { exact: id } }));
  if (caPem === 'sds') {
    if (matchers.length > 0) c.combined_validation_context = { default_validation_context: { match_typed_subject_alt_names: matchers }, validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: { ads: {}, resource_api_version: 'V3' } } };
    else c.validation_context_sds_secret_config = { name: 'ROOTCA', sds_config: { ads: {}, resource_api_version: 'V3' } };
  } else {
    c.validation_context = { trusted_ca: { inline_string: caPem }, ...(matchers.length > 0 ? { match_typed_subject_alt_names: matchers } : {}) };
  }
  if (alpn !== undefined) c.alpn_protocols = alpn;
  return c;
}

export function downstreamTls(cert: Cert, caPem: string | 'sds', opts: { require?: boolean; alpn?: string[] } = {}): Record<string, unknown> {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: { '@type': `${TLS}.DownstreamTlsContext`, common_tls_context: common(cert, caPem, opts.alpn ?? ['h2', 'http/1.1']), require_client_certificate: { value: opts.require ?? true } },
  };
}

export function upstreamTls(cert: Cert, caPem: string | 'sds', sans: string[], opts: { sni?: string; alpn?: string[] } = {}): Record<string, unknown> {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: { '@type': `${TLS}.UpstreamTlsContext`, common_tls_context: common(cert, caPem, opts.alpn ?? ['h2', 'http/1.1'], sans), ...(opts.sni !== undefined ? { sni: opts.sni } : {}) },
  };
}

/** An HTTP filter chain routing everything to `cluster`. */
export function httpChain(name: string, cluster: string, match: Record<string, unknown> | undefined, transportSocket?: Record<string, unknown>): Record<string, unknown> {
  const route = { route_config: { name, virtual_hosts: [{ name, domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster } }] }] } };
  return {
    name,
    ...(match !== undefined ? { filter_chain_match: match } : {}),
    ...(transportSocket !== undefined ? { transport_socket: transportSocket } : {}),
    filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm(route, { stat_prefix: name }) }],
  };
}

export function inboundListener(chains: Record<string, unknown>[], port = 0): Record<string, unknown> {
  return {
    name: 'inbound',
    address: { socket_address: { address: '127.0.0.1', port_value: port } },
    traffic_direction: 'INBOUND',
    listener_filters: [{ name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector' } }],
    filter_chains: chains,
  };
}

export interface CurlResult {
  /** curl's exit code (0 = transfer done; 35/56/... = TLS or connection failure). */
  readonly exit: number;
  /** HTTP status, 0 when there was no response. */
  readonly status: number;
  readonly body: string;
  readonly version: string;
  readonly stderr: string;
}

/** Runs curl; `-w` appends status and HTTP version after the body. */
export function curl(args: string[], timeoutMs = 10_000): Promise<CurlResult> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', String(timeoutMs / 1000), '-w', '\n%{http_code} %{http_version}', ...args], { timeout: timeoutMs + 2000 }, (err, stdout, stderr) => {
      const exit = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1;
      const nl = stdout.lastIndexOf('\n');
      const [code, version] = stdout.slice(nl + 1).split(' ');
      resolve({ exit, status: Number(code ?? 0), version: version ?? '', body: stdout.slice(0, Math.max(0, nl)), stderr });
    });
  });
}

/** curl arguments for an mTLS request (server certificate not checked: these tests check the server side). */
export function clientCertArgs(c: Issued): string[] {
  return ['-k', '--cert', c.files.cert, '--key', c.files.key];
}
