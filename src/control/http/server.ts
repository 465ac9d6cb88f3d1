import { readFileSync } from 'node:fs';
import { Server, type IncomingMessage, type ServerResponse } from 'node:http';
import { apiVersionOf } from '../../api/descriptor.js';
import { kinds as defaultRegistry, type KindRegistry } from '../../api/registry.js';
import { WeftError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import type { ConfigStore } from '../../store/types.js';
import type { CaService } from '../identity/ca-service.js';
import { applyDocuments } from './apply.js';
import { caAuthenticatesItself, handleCa } from './ca.js';
import { createAuthorizer } from './auth.js';
import { dashboardWatch, isOpenDashboardPath, serveDashboard } from './dashboard.js';
import { MAX_BODY_BYTES } from './body.js';
import { createControlMetrics } from './metrics.js';
import type { ApiContext, ApiRequest } from './context.js';
import { sendError, sendJson } from './errors.js';
import { createObject, deleteObject, getObject, listObjects, replaceObject } from './resources.js';
import { resolveRoute, splitTarget } from './router.js';
import { watchObjects, WatchRegistry, type WatchOptions } from './watch.js';
import { xdsClientConfig, xdsClients, type XdsStatusSource } from './xds.js';
import { handleTelemetry } from './telemetry.js';
import type { TelemetryHub } from '../telemetry/hub.js';

export interface ApiServerOptions {
  store: ConfigStore;
  adminToken: string;
  log: Logger;
  /** The ADS server, for `/xds/clients` and the xDS metrics; without it those answer 503. */
  xds?: XdsStatusSource;
  /** The CA, for `/ca/*` and the certificate metrics; without it `/ca/*` answers 503. */
  ca?: CaService;
  registry?: KindRegistry;
  /** Reported by GET /version; defaults to the package's version. */
  version?: string;
  /** Default 1 MiB. */
  maxBodyBytes?: number;
  /** Default 30 s. */
  bookmarkIntervalMs?: number;
  /** Default 16 MiB. */
  maxWatchBufferBytes?: number;
  /** Golden metrics and taps (`/apis/telemetry/v1/...`); without it those answer 503. */
  telemetry?: TelemetryHub;
}

/**
 * A node:http Server whose close() also ends the open watch streams; without
 * that, close() would wait for every watcher to hang up by itself.
 */
export class ApiServer extends Server {
  constructor(
    handler: (req: IncomingMessage, res: ServerResponse) => void,
    private readonly watches: WatchRegistry,
  ) {
    super(handler);
  }

  /** Watch streams now open (for tests and metrics). */
  get openWatches(): number {
    return this.watches.size;
  }

  override close(callback?: (err?: Error) => void): this {
    super.close(callback);
    this.watches.endAll();
    this.closeIdleConnections();
    return this;
  }
}

/** The control plane's HTTP API (docs/http-api.md). Call listen() on the result. */
export function createApiServer(opts: ApiServerOptions): ApiServer {
  const ctx: ApiContext = {
    store: opts.store,
    registry: opts.registry ?? defaultRegistry,
    log: opts.log,
    maxBodyBytes: opts.maxBodyBytes ?? MAX_BODY_BYTES,
  };
  const version = opts.version ?? packageVersion();
  const authorize = createAuthorizer(opts.adminToken);
  const watches = new WatchRegistry();
  const watchOpts: WatchOptions = {
    bookmarkIntervalMs: opts.bookmarkIntervalMs ?? 30_000,
    maxBufferedBytes: opts.maxWatchBufferBytes ?? 16 * 1024 * 1024,
  };
  const metrics = createControlMetrics({ store: opts.store, ...(opts.xds ? { xds: opts.xds } : {}), ...(opts.ca ? { ca: opts.ca } : {}) });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const { segments, query } = splitTarget(req.url ?? '/');
    const open = (segments.length === 1 && (segments[0] === 'healthz' || segments[0] === 'version')) || isOpenDashboardPath(segments);
    if (!open && !caAuthenticatesItself(segments)) authorize({ method, authorization: req.headers.authorization, remoteAddress: req.socket.remoteAddress });
    const route = resolveRoute(segments, ctx.registry);
    const r: ApiRequest = { req, res, query };
    const read = method === 'GET' || method === 'HEAD';

    switch (route.type) {
      case 'healthz':
        allow(res, method, ['GET', 'HEAD']);
        await healthz(ctx, res);
        return;
      case 'version':
        allow(res, method, ['GET', 'HEAD']);
        sendJson(res, 200, { version });
        return;
      case 'discovery':
        allow(res, method, ['GET', 'HEAD']);
        sendJson(res, 200, discovery(ctx.registry));
        return;
      case 'metrics': {
        allow(res, method, ['GET', 'HEAD']);
        const text = await metrics.metrics();
        res.writeHead(200, { 'content-type': metrics.contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
        res.end(text);
        return;
      }
      case 'xds-clients':
        allow(res, method, ['GET', 'HEAD']);
        xdsClients(opts.xds, res);
        return;
      case 'xds-client-config':
        allow(res, method, ['GET', 'HEAD']);
        xdsClientConfig(opts.xds, res, route.nodeId, query);
        return;
      case 'ca':
        return handleCa(ctx, opts.ca, r, route.op, method, opts.xds);
      case 'telemetry':
        allow(res, method, ['GET']);
        return handleTelemetry(opts.telemetry, r, route.op, watches);
      case 'apply':
        allow(res, method, ['POST']);
        await applyDocuments(ctx, r);
        return;
      case 'collection':
        allow(res, method, ['GET', 'HEAD', 'POST']);
        if (!read) return createObject(ctx, r, route);
        if (method === 'GET' && watchParam(query)) return watchObjects(ctx, r, route, watches, watchOpts);
        return listObjects(ctx, r, route);
      case 'object':
        allow(res, method, ['GET', 'HEAD', 'PUT', 'DELETE']);
        if (read) return getObject(ctx, r, route);
        if (method === 'PUT') return replaceObject(ctx, r, route);
        return deleteObject(ctx, r, route);
      case 'ui-redirect':
      case 'ui-asset':
      case 'ui-capabilities':
      case 'ui-certificates':
      case 'ui-policy':
        allow(res, method, ['GET', 'HEAD']);
        return serveDashboard(ctx, res, method, route, opts.ca);
      case 'ui-watch':
        allow(res, method, ['GET']);
        return dashboardWatch(ctx, r, watches, watchOpts);
    }
  }

  const server = new ApiServer((req, res) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      ctx.log.debug({ method: req.method, url: req.url, status: res.statusCode, ms }, 'request');
    });
    handle(req, res).catch((err: unknown) => sendError(res, err, ctx.log, { method: req.method, url: req.url }));
  }, watches);
  server.on('clientError', (err, socket) => {
    ctx.log.debug({ err }, 'malformed HTTP request');
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });
  return server;
}

async function healthz(ctx: ApiContext, res: ServerResponse): Promise<void> {
  try {
    await ctx.store.revision();
  } catch (e) {
    throw new WeftError('WEFT_ERR_UNAVAILABLE', 'the store is not available', { cause: e });
  }
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': 3, 'cache-control': 'no-store' });
  res.end('ok\n');
}

function discovery(registry: KindRegistry) {
  return {
    kinds: registry.kinds.map((d) => ({
      kind: d.kind,
      group: d.group,
      versions: [...d.versions],
      apiVersion: apiVersionOf(d),
      plural: d.plural,
      singular: d.singular,
      shortNames: [...d.shortNames],
      namespaced: d.namespaced,
    })),
  };
}

/** 400 (there is no 405 code in WEFT_ERR_*) with an Allow header, as RFC 9110 asks. */
function allow(res: ServerResponse, method: string, methods: readonly string[]): void {
  if (methods.includes(method)) return;
  res.setHeader('allow', methods.join(', '));
  throw new WeftError('WEFT_ERR_BAD_REQUEST', `method ${method} is not allowed here (allowed: ${methods.join(', ')})`);
}

function watchParam(query: URLSearchParams): boolean {
  const v = query.get('watch');
  if (v === null || v === 'false' || v === '0') return false;
  if (v === 'true' || v === '1' || v === '') return true;
  throw new WeftError('WEFT_ERR_BAD_REQUEST', `watch: must be true or false, got "${v.slice(0, 32)}"`);
}

function packageVersion(): string {
  // dist/src/control/http/server.js → the package root, four levels up.
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}
