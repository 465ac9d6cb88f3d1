/**
 * envoy.transport_sockets.tls → DownstreamTlsConfig / UpstreamTlsConfig.
 *
 * Certificates come either from the config (tls_certificates / trusted_ca as
 * `filename`, `inline_string` or `inline_bytes`: static bootstraps, tests) or from
 * SDS secrets by name. The SDS names Weft's control plane uses are Istio's:
 * `default` = this proxy's own SVID and `ROOTCA` = the mesh trust bundle
 * (tls-material.ts resolves them). Anything the proxy would not honour is refused,
 * so a NACK tells the control plane instead of a silently weaker connection.
 */
import { readFileSync } from 'node:fs';
import { arr, bool, fail, isObject, obj, optObj, str, typedConfig } from '../config/proto-values.js';
import type { DownstreamTlsConfig, ProtoJson, SanMatcher, TlsCertificateSource, TlsValidationSource, UpstreamTlsConfig } from '../config/types.js';

export const TLS_SOCKET_TYPE = 'envoy.extensions.transport_sockets.tls.v3';
const DOWNSTREAM = `${TLS_SOCKET_TYPE}.DownstreamTlsContext`;
const UPSTREAM = `${TLS_SOCKET_TYPE}.UpstreamTlsContext`;
const RAW_BUFFER = 'envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer';

const COMMON_FIELDS = new Set([
  'tls_certificates', 'tls_certificate_sds_secret_configs', 'validation_context', 'validation_context_sds_secret_config',
  'combined_validation_context', 'alpn_protocols',
]);
const VALIDATION_FIELDS = new Set(['trusted_ca', 'match_typed_subject_alt_names']);

/** proto-loader's oneof marker (`specifier: 'inline_string'`): a string naming a sibling field. */
function isMarker(o: ProtoJson, k: string): boolean {
  const v = o[k];
  return typeof v === 'string' && v !== k && Object.prototype.hasOwnProperty.call(o, v);
}

function refuseOthers(o: ProtoJson, allowed: ReadonlySet<string>, path: string): void {
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined || v === null || allowed.has(k) || isMarker(o, k)) continue;
    if (Array.isArray(v) && v.length === 0) continue;
    fail(`${path}.${k}`, 'not supported');
  }
}

/** A config.core.v3.DataSource as UTF-8 text. */
function dataSource(v: unknown, path: string): string {
  const d = obj(v, path);
  if (typeof d.inline_string === 'string') return d.inline_string;
  if (d.inline_bytes !== undefined) {
    const b = d.inline_bytes;
    if (Buffer.isBuffer(b) || b instanceof Uint8Array) return Buffer.from(b).toString('utf8');
    return Buffer.from(str(b, `${path}.inline_bytes`), 'base64').toString('utf8');
  }
  if (typeof d.filename === 'string') {
    try {
      return readFileSync(d.filename, 'utf8');
    } catch (e) {
      return fail(`${path}.filename`, `cannot read ${d.filename}: ${(e as Error).message}`, e);
    }
  }
  return fail(path, 'needs filename, inline_string or inline_bytes (environment_variable is not supported)');
}

function sdsName(v: unknown, path: string): string {
  const o = obj(v, path);
  const name = str(o.name, `${path}.name`);
  const src = optObj(o.sds_config, `${path}.sds_config`);
  // Secrets come over the ADS stream (or are the proxy's own); a separate SDS server is not dialled.
  if (src?.api_config_source !== undefined) fail(`${path}.sds_config`, 'only ADS config sources are supported');
  if (src?.path_config_source !== undefined || src?.path !== undefined) fail(`${path}.sds_config`, 'file-based SDS is not supported');
  return name;
}

function sanMatchers(v: ProtoJson, path: string): SanMatcher[] {
  return arr(v.match_typed_subject_alt_names, `${path}.match_typed_subject_alt_names`).map((m, i) => {
    const mp = `${path}.match_typed_subject_alt_names[${i}]`;
    const o = obj(m, mp);
    const type = o.san_type;
    if (type !== 'URI' && type !== 4) fail(`${mp}.san_type`, 'only URI SANs (SPIFFE IDs) are matched');
    const matcher = obj(o.matcher, `${mp}.matcher`);
    if (matcher.ignore_case === true) fail(`${mp}.matcher.ignore_case`, 'not supported (SPIFFE IDs are compared exactly)');
    if (typeof matcher.exact === 'string') return { kind: 'exact', value: matcher.exact };
    if (typeof matcher.prefix === 'string') return { kind: 'prefix', value: matcher.prefix };
    return fail(`${mp}.matcher`, 'only exact and prefix matchers are supported');
  });
}

interface Common {
  certificate?: TlsCertificateSource;
  validation?: TlsValidationSource;
  sanMatchers: SanMatcher[];
  alpn: string[];
}

function compileCommon(v: unknown, path: string): Common {
  const c = obj(v ?? {}, path);
  refuseOthers(c, COMMON_FIELDS, path);
  const out: Common = { sanMatchers: [], alpn: arr(c.alpn_protocols, `${path}.alpn_protocols`).map((p, i) => str(p, `${path}.alpn_protocols[${i}]`)) };
  const inline = arr(c.tls_certificates, `${path}.tls_certificates`);
  const sds = arr(c.tls_certificate_sds_secret_configs, `${path}.tls_certificate_sds_secret_configs`);
  if (inline.length + sds.length > 1) fail(path, 'exactly one certificate is supported (tls_certificates or tls_certificate_sds_secret_configs)');
  if (inline.length === 1) {
    const cp = `${path}.tls_certificates[0]`;
    const cert = obj(inline[0], cp);
    out.certificate = { kind: 'inline', certPem: dataSource(cert.certificate_chain, `${cp}.certificate_chain`), keyPem: dataSource(cert.private_key, `${cp}.private_key`) };
  } else if (sds.length === 1) {
    out.certificate = { kind: 'sds', name: sdsName(sds[0], `${path}.tls_certificate_sds_secret_configs[0]`) };
  }
  const inlineValidation = (vc: unknown, vp: string): void => {
    const o = obj(vc, vp);
    refuseOthers(o, VALIDATION_FIELDS, vp);
    out.sanMatchers.push(...sanMatchers(o, vp));
    if (o.trusted_ca !== undefined) out.validation = { kind: 'inline', caPem: dataSource(o.trusted_ca, `${vp}.trusted_ca`) };
  };
  if (c.validation_context !== undefined) inlineValidation(c.validation_context, `${path}.validation_context`);
  if (c.validation_context_sds_secret_config !== undefined) {
    out.validation = { kind: 'sds', name: sdsName(c.validation_context_sds_secret_config, `${path}.validation_context_sds_secret_config`) };
  }
  if (c.combined_validation_context !== undefined) {
    const cp = `${path}.combined_validation_context`;
    const cv = obj(c.combined_validation_context, cp);
    if (cv.default_validation_context !== undefined) inlineValidation(cv.default_validation_context, `${cp}.default_validation_context`);
    // The SDS secret supplies the CAs; the default context adds the SAN checks (Envoy merges them).
    out.validation = { kind: 'sds', name: sdsName(cv.validation_context_sds_secret_config, `${cp}.validation_context_sds_secret_config`) };
  }
  return out;
}

/** A transport_socket: undefined for raw_buffer (plaintext), the TLS context's fields otherwise. */
function tlsFields(v: unknown, path: string, want: string): ProtoJson | undefined {
  const ts = obj(v, path);
  if (ts.typed_config === undefined) {
    if (ts.name === 'envoy.transport_sockets.raw_buffer' || ts.name === 'raw_buffer') return undefined;
    fail(path, 'needs typed_config');
  }
  const { type, fields } = typedConfig(ts.typed_config, `${path}.typed_config`);
  if (type === RAW_BUFFER) return undefined;
  if (type !== want) fail(`${path}.typed_config`, `transport socket ${type} is not supported here (supported: ${want}, ${RAW_BUFFER})`);
  return fields;
}

export function compileDownstreamTls(v: unknown, path: string): DownstreamTlsConfig | undefined {
  const f = tlsFields(v, path, DOWNSTREAM);
  if (f === undefined) return undefined;
  const tp = `${path}.typed_config`;
  for (const k of ['require_sni', 'ocsp_staple_policy', 'session_ticket_keys', 'session_ticket_keys_sds_secret_config', 'full_scan_certs_on_sni_mismatch']) {
    if (f[k] !== undefined && f[k] !== null && f[k] !== false && !(isObject(f[k]) && (f[k] as ProtoJson).value === false)) fail(`${tp}.${k}`, 'not supported');
  }
  const common = compileCommon(f.common_tls_context, `${tp}.common_tls_context`);
  if (common.certificate === undefined) fail(`${tp}.common_tls_context`, 'a TLS server needs a certificate');
  const requireClientCertificate = bool(f.require_client_certificate, `${tp}.require_client_certificate`);
  if (requireClientCertificate && common.validation === undefined) fail(`${tp}.common_tls_context`, 'require_client_certificate needs a validation context (trusted CAs)');
  return Object.freeze({ certificate: common.certificate, validation: common.validation, requireClientCertificate, alpn: Object.freeze(common.alpn), sanMatchers: Object.freeze(common.sanMatchers) });
}

export function compileUpstreamTls(v: unknown, path: string): UpstreamTlsConfig | undefined {
  const f = tlsFields(v, path, UPSTREAM);
  if (f === undefined) return undefined;
  const tp = `${path}.typed_config`;
  for (const k of ['allow_renegotiation', 'enforce_rsa_key_usage']) {
    if (f[k] === true) fail(`${tp}.${k}`, 'not supported');
  }
  const common = compileCommon(f.common_tls_context, `${tp}.common_tls_context`);
  // Without trusted CAs node would fall back to the public web roots: never what a mesh means.
  if (common.validation === undefined) fail(`${tp}.common_tls_context`, 'needs a validation context (trusted CAs): an unverified upstream is not supported');
  const sni = f.sni === undefined || f.sni === '' ? undefined : str(f.sni, `${tp}.sni`);
  return Object.freeze({ certificate: common.certificate, validation: common.validation, sni, alpn: Object.freeze(common.alpn), sanMatchers: Object.freeze(common.sanMatchers) });
}
