import type { ServerResponse } from 'node:http';
import { DNS_LABEL, DNS_SUBDOMAIN } from '../../api/meta.js';
import { isObject } from '../../api/parse.js';
import { parseDuration } from '../../lib/duration.js';
import { WeftError } from '../../lib/errors.js';
import { spiffeId } from '../../lib/identity/spiffe.js';
import type { CaService } from '../identity/ca-service.js';
import { caStatus, rotate, ROTATE_STEPS, type RotateStep } from '../identity/ca-rotation.js';
import { bearerToken } from './auth.js';
import { readBody } from './body.js';
import type { ApiContext, ApiRequest } from './context.js';
import { sendJson } from './errors.js';
import type { XdsStatusSource } from './xds.js';

/** `/ca/{op}`: the CA's HTTP endpoints (docs/http-api.md, "CA"). */
export type CaOp = 'tokens' | 'certificates' | 'bundle' | 'status' | 'rotate';
export const CA_OPS: ReadonlySet<string> = new Set<CaOp>(['tokens', 'certificates', 'bundle', 'status', 'rotate']);

/** A CSR and its JSON wrapping are a few hundred bytes; a chain back is a few KiB. */
const MAX_CA_BODY_BYTES = 64 * 1024;

/**
 * Whether the request is one the CA authenticates itself, so the admin-token
 * check must not run first: `/ca/certificates` carries a join token in its
 * Authorization header (which the admin check would refuse as a wrong admin
 * token) and `/ca/bundle` is public (it is what anyone verifies with).
 * `/ca/tokens` is not: minting tokens needs the admin token, as every write.
 */
export function caAuthenticatesItself(segments: readonly string[]): boolean {
  return segments.length === 2 && segments[0] === 'ca' && (segments[1] === 'certificates' || segments[1] === 'bundle');
}

/** Handles `/ca/{op}`; without a CA (an embedder that started none) 503. */
export async function handleCa(ctx: ApiContext, ca: CaService | undefined, r: ApiRequest, op: CaOp, method: string, xds?: XdsStatusSource): Promise<void> {
  if (ca === undefined) throw new WeftError('WEFT_ERR_UNAVAILABLE', 'this control plane runs no certificate authority');
  switch (op) {
    case 'bundle':
      allow(r.res, method, ['GET', 'HEAD']);
      return sendBundle(ca, r);
    case 'tokens':
      allow(r.res, method, ['POST']);
      return createToken(ctx, ca, r);
    case 'certificates':
      allow(r.res, method, ['POST']);
      return issueCertificate(ctx, ca, r);
    case 'status':
      // Read like the rest of the API (admin token, or a loopback GET): it names roots and counts, no secrets.
      allow(r.res, method, ['GET', 'HEAD']);
      sendJson(r.res, 200, await caStatus(ca, xds));
      return;
    case 'rotate':
      allow(r.res, method, ['POST']);
      return rotateStep(ctx, ca, r, xds);
  }
}

/** `POST /ca/rotate {step, force}`: one step of a root rotation (identity/ca-rotation.ts). */
async function rotateStep(ctx: ApiContext, ca: CaService, r: ApiRequest, xds: XdsStatusSource | undefined): Promise<void> {
  const body = await jsonBody(r);
  const details = [];
  const { step, force } = body;
  if (typeof step !== 'string' || !(ROTATE_STEPS as readonly string[]).includes(step)) details.push({ path: 'step', message: `must be one of ${ROTATE_STEPS.join(', ')}` });
  if (force !== undefined && typeof force !== 'boolean') details.push({ path: 'force', message: 'must be a boolean' });
  for (const k of Object.keys(body)) if (!['step', 'force'].includes(k)) details.push({ path: k, message: 'unknown field' });
  if (details.length > 0) throw new WeftError('WEFT_ERR_INVALID', `invalid rotate request: ${details.map((d) => `${d.path} ${d.message}`).join('; ')}`, { details });
  try {
    const result = await rotate(ca, xds, step as RotateStep, { force: force === true });
    ctx.log.warn({ step, force: force === true, roots: result.status.roots.map((x) => x.id), signing: result.status.roots.find((x) => x.signing)?.id }, `ca: root rotation: ${result.message}`);
    sendJson(r.res, 200, result);
  } catch (e) {
    ctx.log.warn({ step, force: force === true, err: e instanceof Error ? e.message : String(e) }, 'ca: root rotation step refused');
    throw e;
  }
}

function sendBundle(ca: CaService, r: ApiRequest): void {
  const bundle = ca.bundlePem();
  const format = r.query.get('format') ?? 'pem';
  if (format === 'json') {
    sendJson(r.res, 200, { trustDomain: ca.trustDomain, trustBundle: bundle });
    return;
  }
  if (format !== 'pem') throw new WeftError('WEFT_ERR_BAD_REQUEST', `format: want pem or json, got "${format.slice(0, 32)}"`);
  r.res.writeHead(200, { 'content-type': 'application/x-pem-file', 'content-length': Buffer.byteLength(bundle), 'cache-control': 'no-store' });
  r.res.end(bundle);
}

async function createToken(ctx: ApiContext, ca: CaService, r: ApiRequest): Promise<void> {
  const body = await jsonBody(r);
  const { namespace, serviceAccount, ttl } = body;
  const details = [];
  // The names Weft's resources use (metadata.namespace, Workload spec.serviceAccount), so a token names an identity a Workload can have.
  if (typeof namespace !== 'string') details.push({ path: 'namespace', message: 'is required (a string)' });
  else if (namespace.length > 63 || !new RegExp(DNS_LABEL).test(namespace)) details.push({ path: 'namespace', message: `must be an RFC 1123 label (${DNS_LABEL})` });
  if (typeof serviceAccount !== 'string') details.push({ path: 'serviceAccount', message: 'is required (a string)' });
  else if (serviceAccount.length > 253 || !new RegExp(DNS_SUBDOMAIN).test(serviceAccount)) details.push({ path: 'serviceAccount', message: `must be an RFC 1123 subdomain (${DNS_SUBDOMAIN})` });
  let ttlMs: number | undefined;
  if (ttl !== undefined) {
    ttlMs = typeof ttl === 'string' ? parseDuration(ttl) : undefined;
    if (ttlMs === undefined) details.push({ path: 'ttl', message: 'must be a duration such as 24h, 30m or 90s' });
  }
  for (const k of Object.keys(body)) if (!['namespace', 'serviceAccount', 'ttl'].includes(k)) details.push({ path: k, message: 'unknown field' });
  if (details.length > 0) throw new WeftError('WEFT_ERR_INVALID', `invalid token request: ${details.map((d) => `${d.path} ${d.message}`).join('; ')}`, { details });
  const token = await ca.ca.createJoinToken({ namespace: namespace as string, serviceAccount: serviceAccount as string, ...(ttlMs !== undefined ? { ttlMs } : {}) });
  const claims = await ca.ca.verifyJoinToken(token);
  ctx.log.info({ namespace, serviceAccount, tokenId: claims.id, expiresAt: claims.expiresAt.toISOString() }, 'ca: join token created');
  sendJson(r.res, 201, {
    token,
    namespace,
    serviceAccount,
    spiffeId: spiffeId(ca.trustDomain, namespace as string, serviceAccount as string),
    expiresAt: claims.expiresAt.toISOString(),
  });
}

async function issueCertificate(ctx: ApiContext, ca: CaService, r: ApiRequest): Promise<void> {
  const token = bearerToken(r.req.headers.authorization);
  if (token === undefined) throw new WeftError('WEFT_ERR_UNAUTHORIZED', 'a certificate request needs "Authorization: Bearer <join token>" (weft token create)');
  const body = await jsonBody(r);
  if (typeof body.csr !== 'string' || body.csr === '') {
    throw new WeftError('WEFT_ERR_INVALID', 'csr: is required (a PEM PKCS#10 certificate request)', { details: [{ path: 'csr', message: 'is required (a PEM PKCS#10 certificate request)' }] });
  }
  try {
    const svid = await ca.issueForToken(token, body.csr);
    ctx.log.info({ spiffeId: svid.spiffeId, serial: svid.serialNumber, notAfter: svid.notAfter.toISOString(), remote: r.req.socket.remoteAddress }, 'ca: certificate issued');
    sendJson(r.res, 200, {
      spiffeId: svid.spiffeId,
      serialNumber: svid.serialNumber,
      certificateChain: svid.chainPem,
      trustBundle: svid.trustBundlePem,
      notAfter: svid.notAfter.toISOString(),
    });
  } catch (e) {
    ctx.log.warn({ err: e instanceof Error ? e.message : String(e), remote: r.req.socket.remoteAddress }, 'ca: certificate request refused');
    throw e;
  }
}

async function jsonBody(r: ApiRequest): Promise<Record<string, unknown>> {
  const type = (r.req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') throw new WeftError('WEFT_ERR_BAD_REQUEST', 'the body must be JSON (content-type: application/json)');
  const text = await readBody(r.req, MAX_CA_BODY_BYTES);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new WeftError('WEFT_ERR_PARSE', 'the body is not valid JSON', { cause: e });
  }
  if (!isObject(v)) throw new WeftError('WEFT_ERR_INVALID', 'the body must be a JSON object');
  return v;
}

function allow(res: ServerResponse, method: string, methods: readonly string[]): void {
  if (methods.includes(method)) return;
  res.setHeader('allow', methods.join(', '));
  throw new WeftError('WEFT_ERR_BAD_REQUEST', `method ${method} is not allowed here (allowed: ${methods.join(', ')})`);
}
