/**
 * The HTTP connection manager and router for one listener: per request, in order:
 * capture the snapshot → pick the virtual host and route → (direct response |
 * redirect | forward: cluster → load balancer → pool → upstream, streaming both
 * ways). Every failure goes through local-reply.ts.
 */
import { randomUUID } from 'node:crypto';
import { request as httpRequest, type IncomingMessage, type ServerResponse, type ClientRequest } from 'node:http';
import type { Socket } from 'node:net';
import type { CompiledRoute, CompiledRouteConfig, CompiledVirtualHost, ForwardAction, HashPolicy, HeaderMutation, RedirectAction, WeightedCluster } from '../config/types.js';
import type { Snapshot } from '../config/state.js';
import { sendLocalReply, type ResponseFlag } from '../local-reply.js';
import { applyMutations } from '../router/header-mutation.js';
import { matchRoute, selectVirtualHost, type RequestView } from '../router/route-table.js';
import type { ProxyStats } from '../stats.js';
import { hash53 } from '../upstream/lb/hash.js';
import type { ClusterHost, ClusterRuntime } from '../upstream/cluster/cluster-manager.js';
import { connectionTokens, filterRawHeaders } from './hop-by-hop.js';

export interface AccessLogEntry {
  readonly startTime: number;
  readonly method: string;
  readonly authority: string;
  readonly path: string;
  readonly status: number;
  /** Envoy response flag, or undefined when the request went fine. */
  readonly flag: ResponseFlag | undefined;
  readonly routeName: string | undefined;
  readonly cluster: string | undefined;
  readonly upstreamHost: string | undefined;
  readonly durationMs: number;
  readonly requestId: string;
}

export interface ForwardContext {
  snapshot(): Snapshot;
  readonly stats: ProxyStats;
  readonly onAccessLog?: ((e: AccessLogEntry) => void) | undefined;
}

const SKIP_REQUEST = new Set(['host', 'expect', 'x-forwarded-for']);
const SKIP_RESPONSE: ReadonlySet<string> = new Set();
const BODYLESS = new Set(['GET', 'HEAD', 'OPTIONS', 'DELETE', 'TRACE']);
const UPSTREAM_TIME_HEADER = 'x-weft-upstream-service-time';

interface Target {
  authority: string;
  /** Host header value to send (as received, case kept). */
  hostHeader: string;
  path: string;
  query: string;
}

/** Origin-form (`/items?x`) or absolute-form (`http://catalog.default/items`, explicit proxy mode). */
function parseTarget(req: IncomingMessage): Target | undefined {
  const url = req.url ?? '/';
  let hostHeader = req.headers.host ?? '';
  let rest = url;
  if (url.charCodeAt(0) !== 47 /* / */) {
    const m = /^https?:\/\/([^/?#]*)(.*)$/i.exec(url);
    if (m === null) return undefined;
    const auth = m[1]!;
    const at = auth.lastIndexOf('@');
    // RFC 9112 §3.2.2: the authority of an absolute-form target replaces Host.
    hostHeader = at === -1 ? auth : auth.slice(at + 1);
    rest = m[2] === '' ? '/' : m[2]!;
    if (rest.charCodeAt(0) !== 47) rest = `/${rest}`;
  }
  const hash = rest.indexOf('#');
  if (hash !== -1) rest = rest.slice(0, hash);
  const q = rest.indexOf('?');
  return {
    authority: hostHeader.toLowerCase(),
    hostHeader,
    path: q === -1 ? rest : rest.slice(0, q),
    query: q === -1 ? '' : rest.slice(q + 1),
  };
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function queryParam(query: string, name: string): string | undefined {
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    if ((eq === -1 ? part : part.slice(0, eq)) === name) return eq === -1 ? '' : part.slice(eq + 1);
  }
  return undefined;
}

/** Envoy combines the hashes of every policy that produced one, stopping after a terminal one. */
function requestHash(policies: readonly HashPolicy[], req: IncomingMessage, t: Target): number | undefined {
  if (policies.length === 0) return undefined;
  let key: string | undefined;
  for (const p of policies) {
    let part: string | undefined;
    switch (p.kind) {
      case 'header': { const v = req.headers[p.name]; part = Array.isArray(v) ? v.join(',') : v; break; }
      case 'cookie': part = cookieValue(req.headers.cookie, p.name); break;
      case 'source-ip': part = req.socket.remoteAddress; break;
      case 'query': part = queryParam(t.query, p.name); break;
    }
    if (part === undefined) continue;
    key = key === undefined ? part : `${key}\u0000${part}`;
    if (p.terminal) break;
  }
  return key === undefined ? undefined : hash53(key);
}

function pickWeighted(clusters: readonly WeightedCluster[], total: number): WeightedCluster {
  let r = Math.floor(Math.random() * total);
  for (const c of clusters) {
    if (r < c.weight) return c;
    r -= c.weight;
  }
  return clusters[clusters.length - 1]!;
}

/** Mutation levels, most specific first; Envoy applies outer levels last (they win) unless told otherwise. */
function levels(rc: CompiledRouteConfig, vh: CompiledVirtualHost, route: CompiledRoute, wc: WeightedCluster | undefined, which: 'request' | 'response'): (HeaderMutation | undefined)[] {
  const key = which === 'request' ? 'requestHeaders' : 'responseHeaders';
  const list = [wc?.[key], route[key], vh[key], rc[key]];
  return rc.mostSpecificHeaderMutationsWins ? list.reverse() : list;
}

function rewritePath(route: CompiledRoute, action: { prefixRewrite?: string | undefined; regexRewrite?: { regex: RegExp; substitution: string } | undefined }, path: string): string {
  if (action.prefixRewrite !== undefined) {
    const m = route.path;
    if (m.kind === 'prefix' || m.kind === 'separated-prefix' || m.kind === 'path') return action.prefixRewrite + path.slice(m.value.length);
    return path;
  }
  if (action.regexRewrite !== undefined) {
    action.regexRewrite.regex.lastIndex = 0;
    return path.replace(action.regexRewrite.regex, action.regexRewrite.substitution);
  }
  return path;
}

function splitHostPort(authority: string): { host: string; port: string | undefined } {
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(authority);
  return m === null ? { host: authority, port: undefined } : { host: m[1]!, port: m[2] };
}

function redirectLocation(a: RedirectAction, route: CompiledRoute, t: Target, req: IncomingMessage): string {
  const proto = req.headers['x-forwarded-proto'];
  const origScheme = typeof proto === 'string' && proto !== '' ? proto : 'http';
  const scheme = a.scheme ?? origScheme;
  const orig = splitHostPort(t.hostHeader);
  const host = a.host ?? orig.host;
  // A scheme or host change drops the original port unless port_redirect names one.
  const port = a.port !== undefined ? String(a.port) : a.scheme !== undefined || a.host !== undefined ? undefined : orig.port;
  let path = t.path;
  let query = a.stripQuery ? '' : t.query;
  if (a.path !== undefined) {
    const q = a.path.indexOf('?');
    path = q === -1 ? a.path : a.path.slice(0, q);
    if (q !== -1) query = a.path.slice(q + 1);
  } else {
    path = rewritePath(route, a, path);
  }
  const defaultPort = (scheme === 'https' && port === '443') || (scheme === 'http' && port === '80');
  return `${scheme}://${host}${port === undefined || port === '' || defaultPort ? '' : `:${port}`}${path}${query === '' ? '' : `?${query}`}`;
}

export function createRequestHandler(listenerName: string, listenerPort: () => number, ctx: ForwardContext): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const snap = ctx.snapshot();
    const start = performance.now();
    const startTime = Date.now();
    const stats = ctx.stats;
    stats.downstreamRqActive++;
    let requestId = req.headers['x-request-id'];
    if (typeof requestId !== 'string' || requestId === '') requestId = randomUUID();
    const rid = requestId;

    let finished = false;
    let status = 0;
    let flag: ResponseFlag | undefined;
    let routeName: string | undefined = undefined;
    let cluster: ClusterRuntime | undefined;
    let host: ClusterHost | undefined;
    let onDone: (() => void) | undefined;
    const t = parseTarget(req);

    const finish = (): void => {
      if (finished) return;
      finished = true;
      stats.downstreamRqActive--;
      onDone?.();
      if (!res.writableFinished && flag === undefined) { flag = 'DC'; status = 0; }
      stats.recordRequest(status, flag);
      ctx.onAccessLog?.({
        startTime, method: req.method ?? '', authority: t?.authority ?? '', path: t?.path ?? (req.url ?? ''),
        status, flag, routeName, cluster: cluster?.name, upstreamHost: host?.key,
        durationMs: performance.now() - start, requestId: rid,
      });
    };
    res.once('close', finish);

    const local = (f: ResponseFlag, override?: number): void => {
      flag = f;
      status = sendLocalReply(res, f, { status: override, requestId: rid });
    };

    const listener = snap.listeners.get(listenerName);
    const rc = listener === undefined ? undefined : listener.hcm.routeConfig ?? (listener.hcm.rdsName === undefined ? undefined : snap.routes.get(listener.hcm.rdsName));
    if (t === undefined || listener === undefined || rc === undefined) return local('NR');
    const vh = selectVirtualHost(rc, listener.hcm, t.authority, listenerPort());
    if (vh === undefined) return local('NR');
    const view: RequestView = { authority: t.authority, path: t.path, query: t.query, headers: req.headers };
    const route = matchRoute(vh, view);
    if (route === undefined) return local('NR');
    routeName = route.name;
    const action = route.action;

    if (action.kind === 'direct') {
      let headers: string[] = action.body === undefined ? ['content-length', '0'] : ['content-type', 'text/plain', 'content-length', String(action.body.length)];
      headers = applyMutations(headers, levels(rc, vh, route, undefined, 'response'));
      status = action.status;
      res.writeHead(action.status, headers);
      res.end(action.body);
      return;
    }
    if (action.kind === 'redirect') {
      let headers = ['location', redirectLocation(action, route, t, req), 'content-length', '0'];
      headers = applyMutations(headers, levels(rc, vh, route, undefined, 'response'));
      status = action.status;
      res.writeHead(action.status, headers);
      res.end();
      return;
    }
    forward(action);

    function forward(a: ForwardAction): void {
      const wc = a.weighted === undefined ? undefined : pickWeighted(a.weighted.clusters, a.weighted.total);
      const clusterName = wc?.name ?? a.cluster!;
      const c = snap.clusters.get(clusterName);
      if (c === undefined) return local('NC', a.clusterNotFoundStatus);
      cluster = c;
      const h = c.lb.pick({ hash: requestHash(a.hashPolicies, req, t!) }) as ClusterHost | undefined;
      if (h === undefined) return local('UH');
      if (c.stats.upstreamRqActive >= c.config.maxRequests) {
        c.stats.upstreamRqOverflow++;
        return local('UO');
      }
      host = h;
      c.stats.upstreamRqActive++;
      c.stats.upstreamRqTotal++;
      h.stats.active++;
      h.stats.total++;
      onDone = () => { c.stats.upstreamRqActive--; h.stats.active--; };

      let headers = filterRawHeaders(req.rawHeaders, connectionTokens(req.headers.connection), SKIP_REQUEST);
      headers.push('host', a.hostRewrite ?? t!.hostHeader);
      const xff = req.headers['x-forwarded-for'];
      const remote = req.socket.remoteAddress ?? '';
      headers.push('x-forwarded-for', xff === undefined || xff === '' ? remote : `${xff}, ${remote}`);
      if (req.headers['x-forwarded-proto'] === undefined) headers.push('x-forwarded-proto', 'http');
      if (req.headers['x-request-id'] !== rid) headers.push('x-request-id', rid);
      headers = applyMutations(headers, levels(rc!, vh!, route!, wc, 'request'));
      const path = rewritePath(route!, a, t!.path);
      const upstreamPath = t!.query === '' && !(req.url ?? '').endsWith('?') ? path : `${path}?${t!.query}`;
      const bodyless = BODYLESS.has(req.method ?? '') && req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined;
      const responseLevels = levels(rc!, vh!, route!, wc, 'response');

      let timer: NodeJS.Timeout | undefined;
      let upReq: ClientRequest | undefined;
      const sent = performance.now();
      if (a.timeoutMs > 0) {
        timer = setTimeout(() => {
          c.stats.upstreamRqTimeout++;
          upReq?.destroy();
          local('UT');
        }, a.timeoutMs);
      }
      res.once('close', () => {
        if (timer !== undefined) clearTimeout(timer);
        if (!res.writableFinished) upReq?.destroy();
      });

      const attempt = (retried: boolean): void => {
        let connected = false;
        const r = httpRequest({
          host: h.address, port: h.port, method: req.method, path: upstreamPath, headers, agent: c.pool.agent, setHost: false,
        });
        upReq = r;
        r.on('socket', (s: Socket) => {
          if (!s.connecting) { connected = true; return; }
          c.stats.upstreamCxTotal++;
          const ct = setTimeout(() => {
            c.stats.upstreamCxConnectTimeout++;
            s.destroy(Object.assign(new Error(`connect timeout after ${c.config.connectTimeoutMs} ms`), { code: 'WEFT_ERR_CONNECT_TIMEOUT' }));
          }, c.config.connectTimeoutMs);
          s.once('connect', () => { connected = true; clearTimeout(ct); });
          s.once('close', () => clearTimeout(ct));
        });
        r.on('error', () => {
          if (flag !== undefined || res.writableEnded) return;
          if (!connected) {
            c.stats.upstreamCxConnectFail++;
            h.stats.connectFailures++;
          }
          // A reused keep-alive socket the upstream closed as we wrote: retry once on a
          // fresh connection if nothing of the request body has been consumed.
          if (connected && r.reusedSocket && bodyless && !retried && !res.headersSent) return attempt(true);
          if (timer !== undefined) clearTimeout(timer);
          if (res.headersSent) { flag = 'UC'; res.destroy(); return; }
          local(connected ? 'UC' : 'UF');
        });
        r.on('response', (up: IncomingMessage) => {
          if (flag !== undefined || res.destroyed) { up.resume(); return; }
          let out = filterRawHeaders(up.rawHeaders, connectionTokens(up.headers.connection), SKIP_RESPONSE);
          out.push(UPSTREAM_TIME_HEADER, String(Math.round(performance.now() - sent)));
          out = applyMutations(out, responseLevels);
          status = up.statusCode ?? 502;
          res.writeHead(status, up.statusMessage, out);
          up.pipe(res);
          up.on('end', () => { if (timer !== undefined) clearTimeout(timer); });
          up.on('error', () => { if (!res.writableFinished) { flag ??= 'UC'; res.destroy(); } });
          up.on('aborted', () => { if (!res.writableFinished) { flag ??= 'UC'; res.destroy(); } });
        });
        if (bodyless) r.end();
        else req.pipe(r);
      };
      attempt(false);
    }
  };
}
