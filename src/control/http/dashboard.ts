// The web dashboard (docs/dashboard.md): static assets under /ui/ and one merged
// watch stream of every kind, so the browser needs a single long-lived connection
// (HTTP/1.1 browsers open at most 6 per host; one watch per kind would starve the
// page's other requests).
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { Resource } from '../../api/types.js';
import { WeftError } from '../../lib/errors.js';
import { BROWSER_MODULES, INDEX_HTML, STYLE_CSS } from '../../dashboard/page.js';
import type { Watch, WatchEvent } from '../../store/types.js';
import type { KindRegistry } from '../../api/registry.js';
import type { CaService } from '../identity/ca-service.js';
import type { ApiContext, ApiRequest } from './context.js';
import { effectivePolicyOf } from './dashboard-policy.js';
import { sendJson } from './errors.js';
import { present, revisionParam } from './objects.js';
// A cycle (router.ts routes /ui here), harmless: used only inside functions.
import { resolveRoute } from './router.js';
import type { WatchLine, WatchOptions, WatchRegistry } from './watch.js';

/**
 * Scripts, styles and connections from this origin only; nothing inline, no
 * plugins, no framing, no forms posting elsewhere.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export type DashboardRoute =
  /** `/` and `/ui`: 302 to `/ui/`. */
  | { type: 'ui-redirect' }
  /** `index.html`, `style.css` or one of the browser modules (`app.js`). */
  | { type: 'ui-asset'; asset: string }
  /** `/ui/api/watch`: every kind in one ndjson watch stream. */
  | { type: 'ui-watch' }
  /** `/ui/api/capabilities`: which optional endpoints this control plane serves. */
  | { type: 'ui-capabilities' }
  /** `/ui/api/certificates`: the CA's roots, signer and workload-certificate counts. */
  | { type: 'ui-certificates' }
  /** `/ui/api/policy/{namespace}/{name}`: a Service's effective BackendPolicy settings (dashboard-policy.ts). */
  | { type: 'ui-policy'; namespace: string; name: string };

/**
 * Browser libraries served from the installed packages (`/ui/vendor/{name}`),
 * resolved at run time so that an installed weft and a clean `npm run build`
 * need no copy step: a dependency's files are where Node resolves them.
 */
export const VENDOR_ASSETS: Readonly<Record<string, { path: string; type: string }>> = {
  'cytoscape.min.js': { path: 'cytoscape/dist/cytoscape.min.js', type: 'text/javascript; charset=utf-8' },
  'uplot.min.js': { path: 'uplot/dist/uPlot.iife.min.js', type: 'text/javascript; charset=utf-8' },
  'uplot.min.css': { path: 'uplot/dist/uPlot.min.css', type: 'text/css; charset=utf-8' },
};

const ASSET_NAME = /^[a-z][a-z0-9-]*\.(?:js|css)$/;

/** Routes for segments `[]` or `['ui', ...]` (the router sends only those here). */
export function resolveDashboardRoute(segments: readonly string[]): DashboardRoute {
  if (segments.length === 0) return { type: 'ui-redirect' };
  const [first, second, third] = segments;
  if (first !== 'ui') throw notFound(segments);
  if (segments.length === 1) return { type: 'ui-redirect' };
  if (segments.length === 2 && second === '') return { type: 'ui-asset', asset: 'index.html' };
  if (segments.length === 2 && second !== undefined && ASSET_NAME.test(second) && knownAsset(second)) return { type: 'ui-asset', asset: second };
  if (segments.length === 3 && second === 'api' && third === 'watch') return { type: 'ui-watch' };
  if (segments.length === 3 && second === 'api' && third === 'capabilities') return { type: 'ui-capabilities' };
  if (segments.length === 3 && second === 'api' && third === 'certificates') return { type: 'ui-certificates' };
  if (segments.length === 5 && second === 'api' && third === 'policy') return { type: 'ui-policy', namespace: segments[3]!, name: segments[4]! };
  if (segments.length === 3 && second === 'vendor' && third !== undefined && Object.hasOwn(VENDOR_ASSETS, third)) return { type: 'ui-asset', asset: `vendor/${third}` };
  throw notFound(segments);
}

/**
 * The page and its code need no token from anywhere: they carry no data (the
 * package's own files, like `/version`). The data the page reads (`/apis`,
 * `/xds/clients`, `/ui/api/watch`) is authorized like every other read.
 */
export function isOpenDashboardPath(segments: readonly string[]): boolean {
  if (segments.length === 0) return true;
  return segments[0] === 'ui' && segments[1] !== 'api';
}

function knownAsset(name: string): boolean {
  return name === 'style.css' || (name.endsWith('.js') && (BROWSER_MODULES as readonly string[]).includes(name.slice(0, -3)));
}

/** The compiled browser modules: dist/src/control/http/ → dist/src/dashboard/. */
const MODULE_DIR = new URL('../../dashboard/', import.meta.url);
const cache = new Map<string, Buffer>();
const requireFromHere = createRequire(import.meta.url);

async function vendorBody(name: string): Promise<{ body: Buffer; type: string }> {
  const v = VENDOR_ASSETS[name]!;
  let body = cache.get(`vendor/${name}`);
  if (body === undefined) {
    try {
      body = await readFile(requireFromHere.resolve(v.path));
    } catch (e) {
      throw new WeftError('WEFT_ERR_NOT_FOUND', `dashboard library ${v.path} is not installed (npm install)`, { cause: e });
    }
    cache.set(`vendor/${name}`, body);
  }
  return { body, type: v.type };
}

async function assetBody(asset: string): Promise<{ body: Buffer; type: string }> {
  if (asset === 'index.html') return { body: Buffer.from(INDEX_HTML, 'utf8'), type: 'text/html; charset=utf-8' };
  if (asset === 'style.css') return { body: Buffer.from(STYLE_CSS, 'utf8'), type: 'text/css; charset=utf-8' };
  if (asset.startsWith('vendor/')) return vendorBody(asset.slice('vendor/'.length));
  let body = cache.get(asset);
  if (body === undefined) {
    try {
      body = await readFile(new URL(asset, MODULE_DIR));
    } catch (e) {
      throw new WeftError('WEFT_ERR_NOT_FOUND', `dashboard module ${asset} is missing from this build`, { cause: e });
    }
    cache.set(asset, body);
  }
  return { body, type: 'text/javascript; charset=utf-8' };
}

/** Headers on every dashboard response. */
export function securityHeaders(): Record<string, string> {
  return {
    'content-security-policy': DASHBOARD_CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
  };
}

export interface DashboardCapabilities {
  /** Golden metrics at GET /stats/services (an older shape; kept for embedders that serve it). */
  stats: boolean;
  /** The telemetry API: /apis/telemetry/v1/{stats,stats/stream,timeseries,tap}. */
  telemetry: boolean;
  /** This control plane runs a CA (/ui/api/certificates answers). */
  certificates: boolean;
}

function served(segments: readonly string[], registry: KindRegistry): boolean {
  try {
    resolveRoute(segments, registry);
    return true;
  } catch {
    return false;
  }
}

/**
 * Optional endpoints the page may use, so that it never asks for a path that is
 * not there (a 404 is a console error in every browser).
 */
export function dashboardCapabilities(registry: KindRegistry, ca?: CaService): DashboardCapabilities {
  return {
    stats: served(['stats', 'services'], registry),
    telemetry: served(['apis', 'telemetry', 'v1', 'stats'], registry),
    certificates: ca !== undefined,
  };
}

export interface CertificateView {
  subject: string;
  issuer: string;
  serialNumber: string;
  notBefore: string;
  notAfter: string;
  fingerprintSha256: string;
  ca: boolean;
}

/** What /ui/api/certificates answers. Workload certificates are counted, not listed: the CA keeps only serial → notAfter. */
export interface CertificatesView {
  trustDomain: string;
  source: 'generated' | 'supplied';
  roots: CertificateView[];
  signer: CertificateView;
  workload: { issuedTotal: number; live: number; soonestExpiry?: string };
  now: string;
}

function certificateView(pem: string): CertificateView {
  const c = new X509Certificate(pem);
  return {
    subject: c.subject.replace(/\n/g, ', '),
    issuer: c.issuer.replace(/\n/g, ', '),
    serialNumber: c.serialNumber,
    notBefore: new Date(c.validFrom).toISOString(),
    notAfter: new Date(c.validTo).toISOString(),
    fingerprintSha256: c.fingerprint256,
    ca: c.ca,
  };
}

export function certificatesView(ca: CaService): CertificatesView {
  const m = ca.ca.material;
  const stats = ca.stats();
  return {
    trustDomain: ca.trustDomain,
    source: m.source,
    roots: m.roots.map((r) => certificateView(r.certPem)),
    signer: certificateView(m.signer.certPem),
    workload: {
      issuedTotal: stats.issuedTotal,
      live: stats.liveCertificates,
      ...(stats.soonestExpiry !== undefined ? { soonestExpiry: stats.soonestExpiry.toISOString() } : {}),
    },
    now: new Date(m.now()).toISOString(),
  };
}

export async function serveDashboard(ctx: ApiContext, res: ServerResponse, method: string, route: Exclude<DashboardRoute, { type: 'ui-watch' }>, ca?: CaService): Promise<void> {
  if (route.type === 'ui-capabilities') {
    sendJson(res, 200, dashboardCapabilities(ctx.registry, ca), securityHeaders());
    return;
  }
  if (route.type === 'ui-policy') {
    sendJson(res, 200, await effectivePolicyOf(ctx.store, route.namespace, route.name), securityHeaders());
    return;
  }
  if (route.type === 'ui-certificates') {
    if (ca === undefined) throw new WeftError('WEFT_ERR_UNAVAILABLE', 'this control plane runs no certificate authority');
    sendJson(res, 200, certificatesView(ca), securityHeaders());
    return;
  }
  if (route.type === 'ui-redirect') {
    res.writeHead(302, { location: '/ui/', 'content-length': 0, 'cache-control': 'no-store', ...securityHeaders() });
    res.end();
    return;
  }
  const { body, type } = await assetBody(route.asset);
  res.writeHead(200, {
    'content-type': type,
    'content-length': body.length,
    // The modules change with the package: revalidate rather than go stale.
    'cache-control': 'no-cache',
    ...securityHeaders(),
  });
  res.end(method === 'HEAD' ? undefined : body);
}

/**
 * GET /ui/api/watch: the watch API's ndjson stream (docs/http-api.md) over every
 * kind at once. Without `resourceVersion` it starts with every stored object as
 * ADDED followed by a BOOKMARK (so a client knows its initial list is complete);
 * with `resourceVersion=N` it replays the changes after N (410 when compacted).
 * Objects are presented in their kind's first version, as the API does.
 */
export async function dashboardWatch(ctx: ApiContext, { req, res, query }: ApiRequest, streams: WatchRegistry, opts: WatchOptions): Promise<void> {
  const from = revisionParam(query, 'resourceVersion');
  let initial: Resource[] = [];
  let fromRevision: number;
  if (from === undefined) {
    const list = await ctx.store.list();
    initial = list.items;
    fromRevision = list.revision;
  } else {
    fromRevision = Number(from);
  }
  const show = (r: Resource): Resource => present(ctx.registry.byKindName(r.kind), r);

  let delivered = fromRevision;
  let closed = false;
  let pending: WatchLine[] | undefined = [];
  const send = (line: WatchLine): void => {
    if (closed) return;
    if (pending) {
      pending.push(line);
      return;
    }
    res.write(`${JSON.stringify(line)}\n`);
    if (res.writableLength > opts.maxBufferedBytes) {
      ctx.log.warn({ buffered: res.writableLength }, 'dashboard watch client too slow; ending its stream');
      end();
    }
  };
  const onEvent = (e: WatchEvent): void => {
    delivered = Math.max(delivered, e.revision);
    send({ type: e.type, object: show(e.object) });
  };
  const watch: Watch = ctx.store.watch({ fromRevision }, onEvent);
  const bookmark = (): void => send({ type: 'BOOKMARK', object: { metadata: { resourceVersion: String(delivered) } } });
  const timer = setInterval(bookmark, opts.bookmarkIntervalMs);
  timer.unref();
  let unregister: () => void = () => undefined;
  const end = (): void => {
    if (closed) return;
    closed = true;
    watch.close();
    clearInterval(timer);
    unregister();
    if (!res.writableEnded) res.end();
  };
  unregister = streams.add(end);
  res.on('close', end);
  if (res.destroyed || req.socket.destroyed) {
    end();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  const queued = pending;
  pending = undefined;
  for (const r of initial) send({ type: 'ADDED', object: show(r) });
  for (const line of queued) send(line);
  bookmark();
}

function notFound(segments: readonly string[]): WeftError {
  return new WeftError('WEFT_ERR_NOT_FOUND', `no such path: /${segments.join('/')}`);
}
