/**
 * `/apis/telemetry/v1/...`: golden metrics and taps over HTTP (docs/http-api.md and
 * docs/observability.md, "Tap and golden metrics"). The dashboard and `weft stat /
 * top / tap` read exactly these shapes.
 *
 * - GET stats?namespace=NS&window=60s → StatsResponse (golden.ts)
 * - GET stats/stream?... → Server-Sent Events, one `stats` event every 2 s
 * - GET timeseries?service=S&namespace=NS&minutes=5 → { step, points }
 * - GET tap?service=S&namespace=NS | proxy=ID [&path=P&method=M&authority=A&limit=N&rate=R]
 *   → ndjson (or SSE with `Accept: text/event-stream`) of tap events; closing the
 *   connection stops the tap on the proxies.
 * - GET proxies → the proxies connected to this replica's telemetry service
 */
import type { ServerResponse } from 'node:http';
import { WeftError } from '../../lib/errors.js';
import { parseDuration } from '../../lib/duration.js';
import type { TelemetryHub, TapEvent, TapFilter } from '../telemetry/hub.js';
import { RETENTION_MS } from '../telemetry/hub.js';
import type { ApiRequest } from './context.js';
import { sendJson } from './errors.js';
import type { WatchRegistry } from './watch.js';

export type TelemetryOp = 'stats' | 'stats-stream' | 'timeseries' | 'tap' | 'proxies';

/** `rest` = the segments after `/apis/telemetry/v1`. */
export function telemetryOp(rest: readonly string[]): TelemetryOp | undefined {
  const p = rest.join('/');
  switch (p) {
    case 'stats': return 'stats';
    case 'stats/stream': return 'stats-stream';
    case 'timeseries': return 'timeseries';
    case 'tap': return 'tap';
    case 'proxies': return 'proxies';
    default: return undefined;
  }
}

export interface TelemetryHttpOptions {
  /** How often stats/stream sends an event (default 2 s). */
  streamIntervalMs?: number;
  /** Bytes queued for a slow tap client beyond which events are dropped (default 1 MiB). */
  maxTapBufferBytes?: number;
}

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DEFAULT_WINDOW = '60s';
const MAX_TAP_LIMIT = 1_000_000;

function nameParam(q: URLSearchParams, key: string): string | undefined {
  const v = q.get(key);
  if (v === null || v === '') return undefined;
  if (!NAME.test(v) || v.length > 253) throw new WeftError('WEFT_ERR_BAD_REQUEST', `${key}: "${v.slice(0, 64)}" is not a valid name`);
  return v;
}

function intParam(q: URLSearchParams, key: string, min: number, max: number, dflt: number): number {
  const v = q.get(key);
  if (v === null || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new WeftError('WEFT_ERR_BAD_REQUEST', `${key}: want an integer from ${min} to ${max}, got "${v.slice(0, 32)}"`);
  return n;
}

function windowParam(q: URLSearchParams): { windowMs: number; window: string } {
  const window = q.get('window') ?? DEFAULT_WINDOW;
  const ms = parseDuration(window);
  if (ms === undefined || ms < 1000 || ms > RETENTION_MS) throw new WeftError('WEFT_ERR_BAD_REQUEST', `window: want a duration from 1s to 15m (e.g. 60s, 5m), got "${window.slice(0, 32)}"`);
  return { windowMs: ms, window };
}

function unavailable(): WeftError {
  return new WeftError('WEFT_ERR_UNAVAILABLE', 'telemetry is not running on this control plane');
}

export function handleTelemetry(hub: TelemetryHub | undefined, r: ApiRequest, op: TelemetryOp, streams: WatchRegistry, opts: TelemetryHttpOptions = {}): void {
  if (hub === undefined) throw unavailable();
  const q = r.query;
  switch (op) {
    case 'stats': {
      const w = windowParam(q);
      sendJson(r.res, 200, hub.stats({ ...w, namespace: nameParam(q, 'namespace') }));
      return;
    }
    case 'stats-stream': {
      const w = windowParam(q);
      const namespace = nameParam(q, 'namespace');
      const res = startStream(r.res, 'text/event-stream');
      const send = (): void => { res.write(`event: stats\ndata: ${JSON.stringify(hub.stats({ ...w, namespace }))}\n\n`); };
      send();
      const timer = setInterval(send, opts.streamIntervalMs ?? 2000);
      const unregister = streams.add(() => res.end());
      res.once('close', () => { clearInterval(timer); unregister(); });
      return;
    }
    case 'timeseries': {
      const name = nameParam(q, 'service');
      if (name === undefined) throw new WeftError('WEFT_ERR_BAD_REQUEST', 'service: required');
      const minutes = intParam(q, 'minutes', 1, RETENTION_MS / 60_000, 5);
      sendJson(r.res, 200, hub.timeseries({ service: { name, namespace: nameParam(q, 'namespace') ?? 'default' }, minutes }));
      return;
    }
    case 'proxies':
      sendJson(r.res, 200, { items: hub.proxies() });
      return;
    case 'tap':
      return tap(hub, r, streams, opts);
  }
}

function startStream(res: ServerResponse, contentType: string): ServerResponse {
  res.writeHead(200, { 'content-type': `${contentType}; charset=utf-8`, 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
  res.flushHeaders();
  return res;
}

function tap(hub: TelemetryHub, { req, res, query: q }: ApiRequest, streams: WatchRegistry, opts: TelemetryHttpOptions): void {
  const service = nameParam(q, 'service');
  const proxy = q.get('proxy') ?? undefined;
  if ((service === undefined) === (proxy === undefined || proxy === '')) throw new WeftError('WEFT_ERR_BAD_REQUEST', 'tap: give service (with namespace) or proxy, not both');
  const path = q.get('path') ?? '';
  if (path !== '' && !path.startsWith('/')) throw new WeftError('WEFT_ERR_BAD_REQUEST', `path: want a prefix starting with "/", got "${path.slice(0, 64)}"`);
  const method = (q.get('method') ?? '').toUpperCase();
  if (method !== '' && !/^[A-Z]{1,20}$/.test(method)) throw new WeftError('WEFT_ERR_BAD_REQUEST', `method: "${method.slice(0, 32)}" is not an HTTP method`);
  const limit = intParam(q, 'limit', 0, MAX_TAP_LIMIT, 0);
  const rate = intParam(q, 'rate', 0, 1000, 0);
  const filter: TapFilter = {
    ...(service !== undefined ? { service: { name: service, namespace: nameParam(q, 'namespace') ?? 'default' } } : { proxy: proxy! }),
    pathPrefix: path, method, authority: (q.get('authority') ?? '').toLowerCase(), maxRate: rate,
  };
  const sse = (req.headers.accept ?? '').includes('text/event-stream');
  const maxBuffer = opts.maxTapBufferBytes ?? 1024 * 1024;
  let sent = 0;
  let dropped = 0;
  let ended = false;
  const write = (event: string, body: unknown): void => {
    const json = JSON.stringify(body);
    res.write(sse ? `event: ${event}\ndata: ${json}\n\n` : `${json}\n`);
  };
  const handle = hub.startTap(filter, {
    event: (e: TapEvent) => {
      if (ended) return;
      // A slow reader loses events (counted), it never slows the proxies down.
      if (res.writableLength > maxBuffer) { dropped++; return; }
      write('tap', e);
      sent++;
      if (limit > 0 && sent >= limit) finish();
    },
    dropped: (_proxy, n) => { dropped += n; },
  });
  res.writeHead(200, {
    'content-type': `${sse ? 'text/event-stream' : 'application/x-ndjson'}; charset=utf-8`,
    'cache-control': 'no-store', 'x-accel-buffering': 'no', 'x-weft-tap-id': handle.id, 'x-weft-tap-proxies': String(handle.proxies),
  });
  res.flushHeaders();
  const dropTimer = setInterval(() => {
    if (dropped === 0 || res.writableLength > maxBuffer) return;
    write('dropped', { dropped });
    dropped = 0;
  }, 1000);
  const unregister = streams.add(() => finish());
  function finish(): void {
    if (ended) return;
    ended = true;
    clearInterval(dropTimer);
    handle.stop();
    unregister();
    if (dropped > 0 && !res.destroyed) write('dropped', { dropped });
    res.end();
  }
  res.once('close', finish);
}
