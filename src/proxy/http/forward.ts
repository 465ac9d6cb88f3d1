/**
 * The HTTP connection manager and router for one listener: per request, in order:
 * capture the snapshot → pick the virtual host and route → (direct response |
 * redirect | forward: cluster → load balancer → pool → upstream, streaming both
 * ways). Every failure goes through local-reply.ts.
 *
 * The downstream is node:http (HTTP/1.1) or node:http2's compatibility API (h2c);
 * both arrive here as IncomingMessage/ServerResponse (the h2 objects are close
 * enough; the few differences are handled where they matter: `:authority`, no
 * status message, trailers-only gRPC replies). The upstream is HTTP/1.1 over the
 * cluster's keep-alive Agent, or one multiplexed HTTP/2 session per endpoint when
 * the cluster says so. Trailers are forwarded both ways (gRPC's grpc-status lives
 * there).
 */
import { randomUUID } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse, type OutgoingHttpHeaders } from 'node:http';
import { constants as h2constants, type ClientHttp2Stream, type IncomingHttpHeaders as H2Headers } from 'node:http2';
import type { Socket } from 'node:net';
import type { CompiledRoute, CompiledRouteConfig, CompiledVirtualHost, ForwardAction, HashPolicy, HeaderMutation, HeaderToAdd, RedirectAction, WeightedCluster } from '../config/types.js';
import type { FilterRequest } from '../filters/types.js';
import { downstreamConnectionOf, requestSocket } from '../tls/downstream-connection.js';
import type { Snapshot } from '../config/state.js';
import { isGrpcRequest, sendLocalReply, sendRawLocalReply, type ResponseFlag } from '../local-reply.js';
import { applyMutations } from '../router/header-mutation.js';
import { matchRoute, selectVirtualHost, type RequestView } from '../router/route-table.js';
import type { ProxyStats } from '../stats.js';
import { hash53 } from '../upstream/lb/hash.js';
import type { ClusterHost, ClusterRuntime } from '../upstream/cluster/cluster-manager.js';
import { admitRequest } from '../upstream/circuit/circuit-breaker.js';
import { grpcStatusOf, type AttemptOutcome } from '../upstream/retry/outcome.js';
import { createRetryState } from '../upstream/retry/retry-loop.js';
import { runFilterChain } from '../filters/chain.js';
import { mirrorRequest } from '../router/mirror.js';
import { generatedCookieValue, generatedSetCookie } from '../router/hash-cookie.js';
import { connectionTokens, filterRawHeaders } from './hop-by-hop.js';
import { expectedPeerOf, observeRequest, recordUpgrade } from '../observability/request-observer.js';
import { chainOf } from '../listeners/filter-chain-match.js';
import { TlsMaterial } from '../tls/tls-material.js';
import { connectUpstreamTls, type UpstreamTlsContext } from '../tls/upstream-tls.js';
import { ALPN_H2 } from '../upstream/pool/upstream-pool.js';
import type { Logger } from '../../lib/log.js';

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
  // --- observability (H4, src/proxy/observability/): set by the HTTP connection manager ---
  /** `HTTP/1.1` or `HTTP/2`. */
  readonly protocol?: string;
  /** Request / response body bytes. */
  readonly bytesReceived?: number;
  readonly bytesSent?: number;
  readonly userAgent?: string | undefined;
  /** As sent upstream: the caller's x-forwarded-for plus the downstream address. */
  readonly xForwardedFor?: string | undefined;
  readonly traceId?: string | undefined;
  /** Received on an INBOUND listener. */
  readonly inbound?: boolean;
  /** SPIFFE IDs: inbound, the verified client and this proxy; outbound, this proxy and the upstream's expected one. */
  readonly sourcePrincipal?: string | undefined;
  readonly destinationPrincipal?: string | undefined;
  readonly downstreamAddress?: string;
  readonly requestHeaders?: IncomingHttpHeaders;
}

export interface ForwardContext {
  snapshot(): Snapshot;
  readonly stats: ProxyStats;
  readonly onAccessLog?: ((e: AccessLogEntry) => void) | undefined;
  /** TLS secrets (SVID, bundle) for TLS clusters and listeners, and where handshake failures are logged. */
  readonly tls?: { readonly material: TlsMaterial; readonly log?: Logger | undefined } | undefined;
}

/** The cluster's mTLS connect context, or undefined for a plaintext cluster. */
function upstreamTlsOf(c: ClusterRuntime, ctx: ForwardContext): UpstreamTlsContext | undefined {
  if (c.config.tls === undefined) return undefined;
  return { config: c.config.tls, material: ctx.tls?.material ?? new TlsMaterial(), cluster: c.name, stats: c.stats, ssl: ctx.stats.sslScope(`cluster.${c.name}`), log: ctx.tls?.log };
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
  const authority = req.headers[':authority'];
  let hostHeader = (typeof authority === 'string' ? authority : undefined) ?? req.headers.host ?? '';
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
      case 'cookie': part = cookieValue(req.headers.cookie, p.name) ?? (p.ttlMs !== undefined ? generatedCookieValue(req) : undefined); break;
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

/** grpc-timeout (`1S`, `250m`, …) in ms, or undefined. */
function grpcTimeoutMs(v: string | string[] | undefined): number | undefined {
  if (typeof v !== 'string') return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(v);
  if (m === null) return undefined;
  const n = Number(m[1]);
  const per: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };
  return Math.max(1, Math.ceil(n * per[m[2]!]!));
}

/** An h2 header block (object, arrays for repeats) as a flat raw list without pseudo-headers. */
function h2ToRaw(h: H2Headers): string[] {
  const out: string[] = [];
  for (const k of Object.keys(h)) {
    if (k.charCodeAt(0) === 58) continue;
    const v = h[k];
    if (Array.isArray(v)) for (const x of v) out.push(k, x);
    else if (v !== undefined) out.push(k, String(v));
  }
  return out;
}

function rawToObject(raw: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!.toLowerCase();
    out[k] = out[k] === undefined ? raw[i + 1]! : `${out[k]}, ${raw[i + 1]!}`;
  }
  return out;
}

type Resolution =
  | { readonly ok: false; readonly flag: ResponseFlag }
  | { readonly ok: true; readonly t: Target; readonly rc: CompiledRouteConfig; readonly vh: CompiledVirtualHost; readonly route: CompiledRoute; readonly upgradeTypes: ReadonlySet<string> };

/** Listener → route config → virtual host → route, on the snapshot the request captured. */
function resolveRoute(snap: Snapshot, listenerName: string, listenerPort: number, req: IncomingMessage, t: Target | undefined): Resolution {
  const listener = snap.listeners.get(listenerName);
  // The HCM of the filter chain this request's connection took (listeners/filter-chain-match.ts).
  const hcm = chainOf(listener, req.socket)?.hcm;
  const rc = hcm === undefined ? undefined : hcm.routeConfig ?? (hcm.rdsName === undefined ? undefined : snap.routes.get(hcm.rdsName));
  if (t === undefined || hcm === undefined || rc === undefined) return { ok: false, flag: 'NR' };
  const vh = selectVirtualHost(rc, hcm, t.authority, listenerPort);
  if (vh === undefined) return { ok: false, flag: 'NR' };
  const view: RequestView = { authority: t.authority, path: t.path, query: t.query, headers: req.headers };
  const route = matchRoute(vh, view);
  if (route === undefined) return { ok: false, flag: 'NR' };
  return { ok: true, t, rc, vh, route, upgradeTypes: hcm.upgradeTypes };
}

/** Upstream request headers (raw list) for a forwarded request. */
function upstreamHeaders(req: IncomingMessage, t: Target, a: ForwardAction, rid: string, mutations: (HeaderMutation | undefined)[]): string[] {
  const headers = filterRawHeaders(req.rawHeaders, connectionTokens(req.headers.connection), SKIP_REQUEST);
  headers.push('host', a.hostRewrite ?? t.hostHeader);
  const xff = req.headers['x-forwarded-for'];
  const remote = req.socket.remoteAddress ?? '';
  headers.push('x-forwarded-for', xff === undefined || xff === '' ? remote : `${xff}, ${remote}`);
  if (req.headers['x-forwarded-proto'] === undefined) headers.push('x-forwarded-proto', 'http');
  if (req.headers['x-request-id'] !== rid) headers.push('x-request-id', rid);
  return applyMutations(headers, mutations);
}

/** The filters' view of a routed request (filters/types.ts), collecting the upstream header changes they ask for. */
function filterRequest(req: IncomingMessage, t: Target, cluster: string | undefined, grpc: boolean): FilterRequest & { mutation(): HeaderMutation | undefined } {
  let add: HeaderToAdd[] | undefined;
  let remove: string[] | undefined;
  return {
    method: req.method ?? 'GET',
    path: t.query === '' ? t.path : `${t.path}?${t.query}`,
    authority: t.authority,
    headers: req.headers,
    cluster,
    grpc,
    connection: downstreamConnectionOf(requestSocket(req)),
    metadata: new Map(),
    setRequestHeader(name, value) {
      (add ??= []).push({ name: name.toLowerCase(), value, action: 'OVERWRITE_IF_EXISTS_OR_ADD', keepEmptyValue: true });
    },
    removeRequestHeader(name) {
      (remove ??= []).push(name.toLowerCase());
    },
    mutation: () => (add === undefined && remove === undefined ? undefined : { add: add ?? [], remove: remove ?? [] }),
  };
}

interface Picked { cluster: ClusterRuntime; host: ClusterHost; wc: WeightedCluster | undefined }

/** Cluster and host for a forward action, or the flag that says why there is none. Counts overflow. */
function pickUpstream(snap: Snapshot, a: ForwardAction, req: IncomingMessage, t: Target): Picked | { flag: ResponseFlag; status?: number; cluster?: ClusterRuntime } {
  const wc = a.weighted === undefined ? undefined : pickWeighted(a.weighted.clusters, a.weighted.total);
  const c = snap.clusters.get(wc?.name ?? a.cluster!);
  if (c === undefined) return { flag: 'NC', status: a.clusterNotFoundStatus };
  const h = c.lb.pick({ hash: requestHash(a.hashPolicies, req, t) }) as ClusterHost | undefined;
  if (h === undefined) return { flag: 'UH', cluster: c };
  if (!admitRequest(c)) return { flag: 'UO', cluster: c };
  return { cluster: c, host: h, wc };
}

export function createRequestHandler(listenerName: string, listenerPort: () => number, ctx: ForwardContext): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const snap = ctx.snapshot();
    const start = performance.now();
    const startTime = Date.now();
    const stats = ctx.stats;
    const isH2 = req.httpVersionMajor === 2;
    const grpc = isGrpcRequest(req.headers['content-type']);
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
    // Metrics, access logs, tracing: observability/request-observer.ts.
    const obsListener = snap.listeners.get(listenerName);
    const obs = observeRequest(obsListener, chainOf(obsListener, req.socket)?.hcm, req, res, stats, rid, grpc, t);

    const finish = (): void => {
      if (finished) return;
      finished = true;
      stats.downstreamRqActive--;
      onDone?.();
      if (!res.writableFinished && flag === undefined) { flag = 'DC'; status = 0; }
      stats.recordRequest(status, flag);
      obs.finish({
        startTime, method: req.method ?? '', authority: t?.authority ?? '', path: t?.path ?? (req.url ?? ''),
        status, flag, routeName, cluster: cluster?.name, upstreamHost: host?.key,
        durationMs: performance.now() - start, requestId: rid, upstreamPrincipal: expectedPeerOf(cluster),
      }, ctx.onAccessLog);
    };
    res.once('close', finish);

    const local = (f: ResponseFlag, override?: number): void => {
      flag = f;
      status = sendLocalReply(res, f, { status: override, requestId: rid, grpc });
    };

    const listener = snap.listeners.get(listenerName);
    const maxHeaders = chainOf(listener, req.socket)?.hcm?.maxHeadersCount;
    if (maxHeaders !== undefined && req.rawHeaders.length / 2 > maxHeaders + (isH2 ? 4 : 0)) return local('RQH');
    const r = resolveRoute(snap, listenerName, listenerPort(), req, t);
    if (!r.ok) return local(r.flag);
    const { rc, vh, route } = r;
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
      let headers = ['location', redirectLocation(action, route, r.t, req), 'content-length', '0'];
      headers = applyMutations(headers, levels(rc, vh, route, undefined, 'response'));
      status = action.status;
      res.writeHead(action.status, headers);
      res.end();
      return;
    }
    // HTTP filters before the router (filters/registry.ts): they may answer (FI, RL) or delay.
    const chain = chainOf(listener, req.socket)?.hcm?.httpFilters;
    // Upstream header changes the filters asked for (jwt_authn claim_to_headers), applied after the route's.
    let filterMutation: HeaderMutation | undefined;
    if (chain === undefined || chain.length === 0) forward(action, r.t);
    else {
      const fr = filterRequest(req, r.t, action.cluster, grpc);
      runFilterChain(chain, route, fr, (reply) => {
        if (finished || res.headersSent) return;
        if (reply === undefined) {
          filterMutation = fr.mutation();
          return forward(action, r.t);
        }
        flag = reply.flag;
        status = sendLocalReply(res, reply.flag, { status: reply.status, requestId: rid, grpc, grpcStatus: reply.grpcStatus, headers: reply.headers });
      });
    }

    function forward(a: ForwardAction, t: Target): void {
      const p = pickUpstream(snap, a, req, t);
      if (!('host' in p)) {
        cluster = p.cluster;
        return local(p.flag, p.status);
      }
      const { cluster: c, wc } = p;
      let h = p.host;
      const upTls = upstreamTlsOf(c, ctx);
      cluster = c;
      host = h;
      c.stats.upstreamRqActive++;
      c.stats.upstreamRqTotal++;
      h.stats.active++;
      h.stats.total++;
      onDone = () => {
        c.stats.upstreamRqActive--; h.stats.active--;
        if (retry !== undefined) {
          if (flag === undefined && retry.passThrough !== undefined && res.writableFinished) flag = retry.passThrough;
          retry.done();
        }
      };

      const headers = upstreamHeaders(req, t, a, rid, [...levels(rc, vh, route, wc, 'request'), filterMutation, obs.traceMutation]);
      const path = rewritePath(route, a, t.path);
      const upstreamPath = t.query === '' && !(req.url ?? '').endsWith('?') ? path : `${path}?${t.query}`;
      const bodyless = BODYLESS.has(req.method ?? '') && req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined;
      // Retries (route retry_policy): see upstream/retry/retry-loop.ts.
      const retry = a.retry === undefined ? undefined : createRetryState(a.retry, c, req, bodyless, a.bufferLimitBytes);
      // Mirrors (request_mirror_policies): fire and forget, see router/mirror.ts.
      if (a.mirrors.length > 0) mirrorRequest(snap, a.mirrors, req, headers, upstreamPath, bodyless, a.timeoutMs, { tlsOf: (mc) => upstreamTlsOf(mc, ctx) });
      const responseLevels = levels(rc, vh, route, wc, 'response');
      const setCookie = a.hashPolicies.length === 0 ? undefined : generatedSetCookie(a.hashPolicies, req);

      // A gRPC deadline (grpc-timeout) bounds the upstream request too.
      const gt = grpc ? grpcTimeoutMs(req.headers['grpc-timeout']) : undefined;
      const timeoutMs = gt === undefined ? a.timeoutMs : a.timeoutMs > 0 ? Math.min(a.timeoutMs, gt) : gt;
      let timer: NodeJS.Timeout | undefined;
      let cancelUpstream: (() => void) | undefined;
      const sent = performance.now();
      if (timeoutMs > 0) {
        timer = setTimeout(() => {
          c.stats.upstreamRqTimeout++;
          // Outlier detection counts a timed-out attempt (not a wait between retries).
          if (!res.headersSent && retry?.backingOff !== true) c.resilience.report(h.key, { kind: 'timeout' });
          cancelUpstream?.();
          local('UT');
        }, timeoutMs);
      }
      // Route max_stream_duration (flag DT) and idle_timeout (flag SI), from here to the response's end.
      const gtMax = a.grpcTimeoutHeaderMaxMs;
      const durationMs = gt !== undefined && gtMax !== undefined ? (gtMax > 0 ? Math.min(gt, gtMax) : gt) : a.maxStreamDurationMs ?? 0;
      const streamTimeout = (f: 'DT' | 'SI'): void => {
        if (finished || res.writableEnded) return;
        cancelUpstream?.();
        local(f);
      };
      let durationTimer: NodeJS.Timeout | undefined = durationMs > 0 ? setTimeout(() => streamTimeout('DT'), durationMs) : undefined;
      // The route's idle_timeout replaces the HCM's stream_idle_timeout (0 in either disables it), as in Envoy.
      const idleMs = a.idleTimeoutMs ?? chainOf(listener, req.socket)?.hcm?.streamIdleTimeoutMs ?? 0;
      let idleTimer: NodeJS.Timeout | undefined = idleMs > 0 ? setTimeout(() => streamTimeout('SI'), idleMs) : undefined;
      const touch = (): void => { idleTimer?.refresh(); };
      let touchingRequest = false;
      /** Request bytes count as activity once the body is flowing (a 'data' listener added earlier would start it). */
      const touchOnRequestData = (): void => { if (!bodyless) obs.countRequestBody(); if (idleTimer !== undefined && !bodyless && !touchingRequest) { touchingRequest = true; req.on('data', touch); } };
      const clearStreamTimers = (): void => {
        if (durationTimer !== undefined) clearTimeout(durationTimer);
        if (idleTimer !== undefined) clearTimeout(idleTimer);
        durationTimer = idleTimer = undefined;
        if (touchingRequest) req.off('data', touch);
      };
      res.once('close', () => {
        if (timer !== undefined) clearTimeout(timer);
        clearStreamTimers();
        if (!res.writableFinished) cancelUpstream?.();
      });
      const endWith = (trailers: Record<string, string> | undefined): void => {
        if (timer !== undefined) clearTimeout(timer);
        clearStreamTimers();
        if (trailers !== undefined && Object.keys(trailers).length > 0) res.addTrailers(trailers);
        res.end();
      };
      /** Returns false when the response is already complete (a trailers-only reply to an h2 client). */
      const writeResponseHead = (code: number, message: string | undefined, raw: string[], endStream = false): boolean => {
        let out = raw;
        touch();
        out.push(UPSTREAM_TIME_HEADER, String(Math.round(performance.now() - sent)));
        if (setCookie !== undefined) out.push('set-cookie', setCookie);
        out = applyMutations(out, responseLevels);
        status = code;
        const stream = (res as unknown as { stream?: { respond(h: OutgoingHttpHeaders, o: { endStream: boolean }): void } }).stream;
        if (endStream && isH2 && stream !== undefined) {
          // gRPC's trailers-only response (status in the one HEADERS frame) must stay one frame.
          if (timer !== undefined) clearTimeout(timer);
          const h: OutgoingHttpHeaders = { ...rawToObject(out), ':status': code };
          stream.respond(h, { endStream: true });
          return false;
        }
        if (isH2 || message === undefined) res.writeHead(status, out);
        else res.writeHead(status, message, out);
        return true;
      };
      // --- resilience hooks (retry-loop.ts, outlier detection): begin ---
      /** An attempt ended: tell outlier detection; true when a retry was scheduled instead. */
      const attemptEnded = (o: AttemptOutcome): boolean => {
        c.resilience.report(h.key, o);
        if (retry === undefined || finished || flag !== undefined || res.headersSent) return false;
        return retry.schedule(o, h, (next) => {
          if (finished || flag !== undefined) return;
          h.stats.active--;
          h = next;
          host = h;
          h.stats.active++;
          h.stats.total++;
          c.stats.upstreamRqTotal++;
          launch();
        });
      };
      const perTryTimedOut = (): void => {
        if (finished || flag !== undefined) return;
        cancelUpstream?.();
        if (attemptEnded({ kind: 'per-try-timeout' })) return;
        c.stats.upstreamRqTimeout++;
        if (timer !== undefined) clearTimeout(timer);
        local('UT');
      };
      const launch = (): void => {
        retry?.armPerTry(perTryTimedOut);
        if (c.config.protocol === 'http2' || (upTls !== undefined && c.pool.negotiatedH2(h.address, h.port))) attemptH2(false);
        else attemptH1(false);
      };
      // --- resilience hooks: end ---
      const upstreamFailed = (connected: boolean, refused = false): void => {
        if (finished || flag !== undefined || res.writableEnded) return;
        if (!connected) {
          c.stats.upstreamCxConnectFail++;
          h.stats.connectFailures++;
        }
        if (!res.headersSent && attemptEnded(refused ? { kind: 'refused-stream' } : connected ? { kind: 'reset' } : { kind: 'connect-failure' })) return;
        if (timer !== undefined) clearTimeout(timer);
        if (res.headersSent) { flag = 'UC'; res.destroy(); return; }
        local(retry?.passThrough === 'URX' ? 'URX' : connected ? 'UC' : 'UF');
      };

      const attemptH1 = (retried: boolean): void => {
        let connected = false;
        const r = httpRequest({
          host: h.address, port: h.port, method: req.method, path: upstreamPath, headers, agent: upTls === undefined ? c.pool.agent : c.pool.tlsAgent(upTls, c.config.connectTimeoutMs), setHost: false,
        });
        let stale = false;
        cancelUpstream = () => { stale = true; r.destroy(); };
        r.on('socket', (s: Socket) => {
          // A fresh mTLS connection counts as connected only once the peer answers: with
          // TLS 1.3 a peer refusing our certificate closes after our handshake ended (UF, not UC).
          if (!s.connecting) { connected = upTls === undefined || r.reusedSocket; if (!connected) r.once('response', () => { connected = true; }); return; }
          c.stats.upstreamCxTotal++;
          const ct = setTimeout(() => {
            c.stats.upstreamCxConnectTimeout++;
            s.destroy(Object.assign(new Error(`connect timeout after ${c.config.connectTimeoutMs} ms`), { code: 'WEFT_ERR_CONNECT_TIMEOUT' }));
          }, c.config.connectTimeoutMs);
          s.once('connect', () => { connected = true; clearTimeout(ct); });
          s.once('close', () => clearTimeout(ct));
        });
        r.on('error', (err: Error & { code?: string }) => {
          if (stale || flag !== undefined || res.writableEnded) return;
          // The TLS peer chose h2 by ALPN: its connection is now this host's HTTP/2 session.
          if (err.code === ALPN_H2) return attemptH2(retried);
          // A reused keep-alive socket the upstream closed as we wrote: retry once on a
          // fresh connection if nothing of the request body has been consumed.
          if (connected && r.reusedSocket && bodyless && !retried && !res.headersSent) return attemptH1(true);
          upstreamFailed(connected);
        });
        r.on('response', (up: IncomingMessage) => {
          if (stale || finished || flag !== undefined || res.writableEnded || (res.destroyed as boolean | undefined) === true) { up.resume(); return; }
          if (attemptEnded({ kind: 'response', status: up.statusCode ?? 502, grpcStatus: grpcStatusOf(up.headers['grpc-status']) })) { up.resume(); return; }
          writeResponseHead(up.statusCode ?? 502, up.statusMessage, filterRawHeaders(up.rawHeaders, connectionTokens(up.headers.connection), SKIP_RESPONSE));
          up.pipe(res, { end: false });
          if (idleTimer !== undefined) up.on('data', touch);
          up.on('end', () => endWith(up.rawTrailers.length > 0 ? rawToObject(up.rawTrailers) : undefined));
          up.on('error', () => { if (!res.writableFinished) { flag ??= 'UC'; res.destroy(); } });
          up.on('aborted', () => { if (!res.writableFinished) { flag ??= 'UC'; res.destroy(); } });
        });
        if (bodyless) r.end();
        else if (retry !== undefined) retry.sendBody(r);
        else req.pipe(r);
        touchOnRequestData();
      };

      const attemptH2 = (retried: boolean): void => {
        const conn = c.pool.h2(h.address, h.port, c.config.connectTimeoutMs, () => { c.stats.upstreamCxTotal++; }, upTls);
        const hdrs: OutgoingHttpHeaders = { ':method': req.method ?? 'GET', ':path': upstreamPath, ':scheme': upTls === undefined ? 'http' : 'https' };
        for (let i = 0; i < headers.length; i += 2) {
          const k = headers[i]!.toLowerCase();
          const v = headers[i + 1]!;
          if (k === 'host') { hdrs[':authority'] = v; continue; }
          const prev = hdrs[k];
          hdrs[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [String(prev), v];
        }
        // `te: trailers` is the one TE value HTTP/2 allows; gRPC servers want it.
        if (/(^|,)\s*trailers\s*(,|$)/i.test(String(req.headers.te ?? ''))) hdrs.te = 'trailers';
        let s: ClientHttp2Stream;
        try {
          s = conn.session.request(hdrs, { endStream: bodyless });
        } catch {
          // The session closed under us (GOAWAY raced the pick): one more try on a new one.
          if (!retried) return attemptH2(true);
          return upstreamFailed(conn.connected);
        }
        let responded = false;
        let superseded = false;
        let trailersOnly = false;
        let trailers: Record<string, string> | undefined;
        cancelUpstream = () => { superseded = true; if (!s.destroyed) s.close(h2constants.NGHTTP2_CANCEL); };
        s.on('response', (rh: H2Headers, flags: number) => {
          responded = true;
          if (superseded || finished || flag !== undefined || res.writableEnded) { s.resume(); return; }
          if (attemptEnded({ kind: 'response', status: Number(rh[':status'] ?? 502), grpcStatus: grpcStatusOf(rh['grpc-status']) })) { superseded = true; s.resume(); return; }
          const endStream = (flags & h2constants.NGHTTP2_FLAG_END_STREAM) !== 0;
          if (!writeResponseHead(Number(rh[':status'] ?? 502), undefined, filterRawHeaders(h2ToRaw(rh), undefined, SKIP_RESPONSE), endStream)) {
            trailersOnly = true;
            s.resume();
            return;
          }
          s.pipe(res, { end: false });
          if (idleTimer !== undefined) s.on('data', touch);
        });
        s.on('trailers', (th: H2Headers) => { trailers = rawToObject(h2ToRaw(th)); });
        s.on('end', () => { if (responded && !superseded && flag === undefined && !trailersOnly) endWith(trailers); });
        s.on('error', () => {
          if (superseded) return;
          if (responded) { if (!res.writableFinished) { flag ??= 'UC'; res.destroy(); } return; }
          // REFUSED_STREAM: the server did not process it; safe to retry once.
          if (s.rstCode === h2constants.NGHTTP2_REFUSED_STREAM && bodyless && !retried) { superseded = true; return attemptH2(true); }
          upstreamFailed(conn.connected, s.rstCode === h2constants.NGHTTP2_REFUSED_STREAM);
        });
        s.on('close', () => {
          if (superseded) return;
          if (!responded) { upstreamFailed(conn.connected); return; }
          if (!trailersOnly && !res.writableEnded && flag === undefined && !s.readableEnded) { flag = 'UC'; res.destroy(); }
        });
        if (!bodyless) { if (retry !== undefined) retry.sendBody(s); else req.pipe(s); }
        touchOnRequestData();
      };

      launch();
    }
  };
}

/**
 * HTTP/1.1 Upgrade (WebSocket) passthrough: the request is routed like any other;
 * the upgrade type must be allowed by the HCM's upgrade_configs (403 otherwise, as
 * Envoy does). The upstream gets the Upgrade request on a fresh connection; after
 * its 101 both sockets are piped until either side closes. A non-101 answer is
 * relayed as is and the connection closed. The route timeout covers the wait for
 * the 101 only.
 */
export function createUpgradeHandler(listenerName: string, listenerPort: () => number, ctx: ForwardContext): (req: IncomingMessage, socket: Socket, head: Buffer) => void {
  return (req, down, head) => {
    const snap = ctx.snapshot();
    const start = performance.now();
    const startTime = Date.now();
    const stats = ctx.stats;
    let requestId = req.headers['x-request-id'];
    if (typeof requestId !== 'string' || requestId === '') requestId = randomUUID();
    const rid = requestId;
    const t = parseTarget(req);
    let status = 0;
    let flag: ResponseFlag | undefined;
    // Filled in as the request gets routed (read by the access log).
    const info: { routeName?: string; picked?: Picked } = {};
    let logged = false;
    stats.downstreamRqActive++;
    const log = (): void => {
      if (logged) return;
      logged = true;
      stats.downstreamRqActive--;
      if (status === 0 && flag === undefined) flag = 'DC';
      stats.recordRequest(status, flag);
      // Metrics and access logs as for any request (observability/request-observer.ts); no span, bytes not counted.
      const l = snap.listeners.get(listenerName);
      recordUpgrade(l, chainOf(l, req.socket)?.hcm, req, stats, {
        startTime, method: req.method ?? '', authority: t?.authority ?? '', path: t?.path ?? (req.url ?? ''),
        status, flag, routeName: info.routeName, cluster: info.picked?.cluster.name, upstreamHost: info.picked?.host.key,
        durationMs: performance.now() - start, requestId: rid, upstreamPrincipal: expectedPeerOf(info.picked?.cluster),
      }, ctx.onAccessLog);
    };
    down.on('error', () => {});
    down.once('close', log);
    const local = (f: ResponseFlag, override?: number): void => {
      flag = f;
      status = sendRawLocalReply(down, f, { status: override, requestId: rid });
    };

    const r = resolveRoute(snap, listenerName, listenerPort(), req, t);
    if (!r.ok) return local(r.flag);
    info.routeName = r.route.name;
    const upgrade = String(req.headers.upgrade ?? '').toLowerCase();
    if (!r.upgradeTypes.has(upgrade)) return local('UPG');
    const a = r.route.action;
    if (a.kind !== 'forward') return local('UPG');
    const p = pickUpstream(snap, a, req, r.t);
    if (!('host' in p)) return local(p.flag, p.status);
    info.picked = p;
    const { cluster: c, host: h } = p;
    c.stats.upstreamRqActive++;
    c.stats.upstreamRqTotal++;
    c.stats.upstreamCxTotal++;
    h.stats.active++;
    h.stats.total++;
    down.once('close', () => { c.stats.upstreamRqActive--; h.stats.active--; });

    const headers = upstreamHeaders(req, r.t, a, rid, levels(r.rc, r.vh, r.route, p.wc, 'request'));
    headers.push('connection', 'Upgrade', 'upgrade', String(req.headers.upgrade));
    const path = rewritePath(r.route, a, r.t.path);
    const upstreamPath = r.t.query === '' ? path : `${path}?${r.t.query}`;
    let connected = false;
    // A TLS cluster: a fresh verified connection offering only http/1.1 (Upgrade is an HTTP/1.1 thing).
    const upTls = upstreamTlsOf(c, ctx);
    const up = httpRequest({
      host: h.address, port: h.port, method: req.method, path: upstreamPath, headers, agent: false, setHost: false,
      // node uses createConnection only without an agent (agent: false would mean a fresh plain Agent).
      ...(upTls === undefined ? {} : { agent: undefined, createConnection: () => connectUpstreamTls(h.address, h.port, upTls, ['http/1.1']) as Socket }),
    });
    const ct = setTimeout(() => {
      c.stats.upstreamCxConnectTimeout++;
      up.destroy(new Error('connect timeout'));
    }, c.config.connectTimeoutMs);
    up.on('socket', (s: Socket) => s.once(upTls === undefined ? 'connect' : 'secureConnect', () => { connected = true; clearTimeout(ct); }));
    let timer: NodeJS.Timeout | undefined;
    if (a.timeoutMs > 0) {
      timer = setTimeout(() => {
        c.stats.upstreamRqTimeout++;
        up.destroy();
        local('UT');
      }, a.timeoutMs);
    }
    const stopTimers = (): void => { clearTimeout(ct); if (timer !== undefined) clearTimeout(timer); };
    down.once('close', () => { stopTimers(); if (status === 0) up.destroy(); });
    up.on('error', () => {
      stopTimers();
      if (flag !== undefined || status !== 0) return;
      if (!connected) { c.stats.upstreamCxConnectFail++; h.stats.connectFailures++; }
      local(connected ? 'UC' : 'UF');
    });
    up.on('response', (ur: IncomingMessage) => {
      // The upstream refused the upgrade: relay its answer and close.
      stopTimers();
      status = ur.statusCode ?? 502;
      const out = filterRawHeaders(ur.rawHeaders, connectionTokens(ur.headers.connection), SKIP_RESPONSE);
      let text = `HTTP/1.1 ${status} ${ur.statusMessage ?? ''}\r\n`;
      for (let i = 0; i < out.length; i += 2) text += `${out[i]!}: ${out[i + 1]!}\r\n`;
      down.write(`${text}connection: close\r\n\r\n`);
      ur.pipe(down);
    });
    up.on('upgrade', (ur: IncomingMessage, us: Socket, uhead: Buffer) => {
      stopTimers();
      if (down.destroyed) { us.destroy(); return; }
      status = 101;
      let text = `HTTP/1.1 101 ${ur.statusMessage ?? 'Switching Protocols'}\r\n`;
      for (let i = 0; i < ur.rawHeaders.length; i += 2) text += `${ur.rawHeaders[i]!}: ${ur.rawHeaders[i + 1]!}\r\n`;
      down.write(`${text}\r\n`);
      if (uhead.length > 0) down.write(uhead);
      if (head.length > 0) us.write(head);
      us.on('error', () => down.destroy());
      down.on('error', () => us.destroy());
      us.once('close', () => down.destroy());
      down.once('close', () => us.destroy());
      us.pipe(down);
      down.pipe(us);
    });
    up.end();
  };
}
