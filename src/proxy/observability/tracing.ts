/**
 * HCM `tracing` with provider envoy.tracers.opentelemetry: the proxy continues the
 * caller's trace (W3C traceparent/tracestate, else B3 multi-header or single `b3`)
 * or starts one (random_sampling %, parent-based: a caller's decision is kept), makes
 * one span per request (SERVER on inbound listeners, CLIENT on outbound ones, with
 * OpenTelemetry's HTTP semantic-convention attributes), and sends the upstream the
 * new span as traceparent (and as B3 too when the request came with B3, in the same
 * encoding). Spans go to the collector over OTLP/HTTP (JSON) in batches.
 *
 * The OpenTelemetry packages are imported only when a listener has tracing: a proxy
 * without it never loads them (idle RSS). Loading is asynchronous, so the first
 * requests after tracing is switched on may go untraced (they still propagate the
 * headers they came with, untouched); `tracingReady()` tells when it is loaded.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { fail, isObject, num, obj, str, typedConfig } from '../config/proto-values.js';

const OTEL_TYPE = 'envoy.config.trace.v3.OpenTelemetryConfig';
const BATCH_DELAY_MS = 1000;

export interface TracingConfig {
  /** OTLP/HTTP traces URL (`…/v1/traces`). */
  readonly endpoint: string;
  /** Percent of requests without a sampling decision that start a sampled trace. */
  readonly samplingPct: number;
  /** service.name of the spans; default: the proxy's Service host (`svc.ns`). */
  readonly serviceName: string | undefined;
}

/** `http://collector:4318` → `http://collector:4318/v1/traces`; a URL with a path is kept. */
export function tracesUrl(endpoint: string): string {
  const u = new URL(endpoint);
  if (u.pathname === '' || u.pathname === '/') u.pathname = '/v1/traces';
  return u.toString();
}

/** HCM `tracing` → config (only the OpenTelemetry provider over http_service). */
export function compileTracing(v: unknown, path: string): TracingConfig {
  const t = obj(v, path);
  const provider = obj(t.provider, `${path}.provider`);
  const { type, fields } = typedConfig(provider.typed_config, `${path}.provider.typed_config`);
  const pp = `${path}.provider.typed_config`;
  if (type !== OTEL_TYPE) fail(pp, `tracer ${type} is not supported (supported: ${OTEL_TYPE})`);
  if (fields.grpc_service !== undefined) fail(`${pp}.grpc_service`, 'OTLP over gRPC is not supported; use http_service');
  const hs = obj(fields.http_service, `${pp}.http_service`);
  const uri = str(obj(hs.http_uri, `${pp}.http_service.http_uri`).uri, `${pp}.http_service.http_uri.uri`);
  let endpoint: string;
  try {
    endpoint = tracesUrl(uri);
  } catch (e) {
    return fail(`${pp}.http_service.http_uri.uri`, `"${uri}" is not a URL`, e);
  }
  // Envoy's Percent is {value: 0..100}; the default is 100 % (Envoy's own default).
  const rs = t.random_sampling;
  const samplingPct = rs === undefined ? 100 : num(isObject(rs) ? rs.value : rs, `${path}.random_sampling.value`, 100);
  if (!(samplingPct >= 0 && samplingPct <= 100)) fail(`${path}.random_sampling.value`, 'must be between 0 and 100');
  const serviceName = fields.service_name === undefined || fields.service_name === '' ? undefined : str(fields.service_name, `${pp}.service_name`);
  return Object.freeze({ endpoint, samplingPct, serviceName });
}

type Api = typeof import('@opentelemetry/api');
type Span = import('@opentelemetry/api').Span;
type Context = import('@opentelemetry/api').Context;
type Propagator = import('@opentelemetry/api').TextMapPropagator;

interface Loaded {
  readonly api: Api;
  readonly tracer: import('@opentelemetry/api').Tracer;
  readonly w3c: Propagator;
  readonly b3Multi: Propagator;
  readonly b3Single: Propagator;
  readonly provider: { shutdown(): Promise<void>; forceFlush(): Promise<void> };
}

interface Slot { loaded?: Loaded; promise: Promise<Loaded | undefined> }
const slots = new Map<string, Slot>();

async function load(cfg: TracingConfig, serviceName: string): Promise<Loaded> {
  const [api, core, b3, sdk, exp, res] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/core'),
    import('@opentelemetry/propagator-b3'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
  ]);
  const provider = new sdk.BasicTracerProvider({
    resource: res.resourceFromAttributes({ 'service.name': serviceName }),
    sampler: new sdk.ParentBasedSampler({ root: new sdk.TraceIdRatioBasedSampler(cfg.samplingPct / 100) }),
    spanProcessors: [new sdk.BatchSpanProcessor(new exp.OTLPTraceExporter({ url: cfg.endpoint }), { scheduledDelayMillis: BATCH_DELAY_MS })],
  });
  return {
    api,
    tracer: provider.getTracer('weft-proxy'),
    w3c: new core.W3CTraceContextPropagator(),
    b3Multi: new b3.B3Propagator({ injectEncoding: b3.B3InjectEncoding.MULTI_HEADER }),
    b3Single: new b3.B3Propagator({ injectEncoding: b3.B3InjectEncoding.SINGLE_HEADER }),
    provider,
  };
}

function loaded(cfg: TracingConfig, selfService: string): Loaded | undefined {
  const serviceName = cfg.serviceName ?? selfService;
  const key = `${cfg.endpoint}\u0000${cfg.samplingPct}\u0000${serviceName}`;
  let s = slots.get(key);
  if (s === undefined) {
    const slot: Slot = { promise: Promise.resolve(undefined) };
    slot.promise = load(cfg, serviceName).then((l) => { slot.loaded = l; return l; }, () => undefined);
    slots.set(key, slot);
    s = slot;
  }
  return s.loaded;
}

/** Resolves once every tracer asked for so far is loaded (tests, `weft proxy` start-up). */
export async function tracingReady(): Promise<void> {
  await Promise.all([...slots.values()].map((s) => s.promise));
}

/** Exports buffered spans now. */
export async function flushTracing(): Promise<void> {
  await Promise.all([...slots.values()].map((s) => s.loaded?.provider.forceFlush()));
}

export async function shutdownTracing(): Promise<void> {
  const all = [...slots.values()];
  slots.clear();
  await Promise.all(all.map(async (s) => (await s.promise)?.provider.shutdown()));
}

const getter = {
  keys: (h: IncomingHttpHeaders): string[] => Object.keys(h),
  get: (h: IncomingHttpHeaders, k: string): string | string[] | undefined => h[k.toLowerCase()],
};

/** One request's span. */
export interface RequestTrace {
  readonly traceId: string;
  /** Trace headers for the upstream request (name, value), replacing the caller's. */
  readonly headers: readonly (readonly [string, string])[];
  end(r: { status: number; flag: string | undefined; cluster: string | undefined; upstreamHost: string | undefined; routeName: string | undefined }): void;
}

export interface TraceStart {
  readonly inbound: boolean;
  readonly method: string;
  readonly authority: string;
  readonly path: string;
  readonly protocol: '1.1' | '2';
  readonly headers: IncomingHttpHeaders;
  readonly clientAddress: string;
  readonly requestId: string;
  readonly selfService: string;
}

/** Starts the span of a request, or undefined while the tracer is loading. */
export function startRequestTrace(cfg: TracingConfig, s: TraceStart): RequestTrace | undefined {
  const l = loaded(cfg, s.selfService);
  if (l === undefined) return undefined;
  const { api } = l;
  const h = s.headers;
  let parent: Context = api.ROOT_CONTEXT;
  // B3 goes out (in the encoding it came in) whenever it came in, whichever context won.
  const b3: Propagator | undefined = h.b3 !== undefined ? l.b3Single : h['x-b3-traceid'] !== undefined ? l.b3Multi : undefined;
  if (h.traceparent !== undefined) parent = l.w3c.extract(api.ROOT_CONTEXT, h, getter);
  if (api.trace.getSpanContext(parent) === undefined && b3 !== undefined) parent = b3.extract(api.ROOT_CONTEXT, h, getter);
  const colon = s.authority.lastIndexOf(':');
  const host = colon > 0 && !s.authority.endsWith(']') ? s.authority.slice(0, colon) : s.authority;
  const span: Span = l.tracer.startSpan(s.method, {
    kind: s.inbound ? api.SpanKind.SERVER : api.SpanKind.CLIENT,
    attributes: {
      // OpenTelemetry HTTP semantic conventions (stable names).
      'http.request.method': s.method,
      'url.path': s.path,
      'url.scheme': 'http',
      'server.address': host,
      'network.protocol.name': 'http',
      'network.protocol.version': s.protocol,
      'client.address': s.clientAddress,
      ...(typeof h['user-agent'] === 'string' ? { 'user_agent.original': h['user-agent'] } : {}),
      'weft.request_id': s.requestId,
    },
  }, parent);
  const ctx = api.trace.setSpan(api.ROOT_CONTEXT, span);
  const carrier: Record<string, string> = {};
  l.w3c.inject(ctx, carrier, api.defaultTextMapSetter);
  b3?.inject(ctx, carrier, api.defaultTextMapSetter);
  return {
    traceId: span.spanContext().traceId,
    headers: Object.entries(carrier),
    end(r) {
      if (r.status > 0) span.setAttribute('http.response.status_code', r.status);
      if (r.flag !== undefined) span.setAttribute('weft.response_flags', r.flag);
      if (r.cluster !== undefined) span.setAttribute('weft.upstream_cluster', r.cluster);
      if (r.upstreamHost !== undefined) span.setAttribute('weft.upstream_host', r.upstreamHost);
      if (r.routeName !== undefined) span.setAttribute('http.route', r.routeName);
      // Semantic conventions: a server span errs on 5xx, a client span on 4xx too.
      const failed = r.status === 0 || r.status >= 500 || (!s.inbound && r.status >= 400);
      if (failed) {
        span.setAttribute('error.type', r.flag ?? (r.status === 0 ? 'no_response' : String(r.status)));
        span.setStatus({ code: api.SpanStatusCode.ERROR });
      }
      span.end();
    },
  };
}

/** Trace id of a request that is not traced here but came with one (for access logs). */
export function incomingTraceId(h: IncomingHttpHeaders): string | undefined {
  const tp = h.traceparent;
  if (typeof tp === 'string' && tp.length >= 55) return tp.slice(3, 35);
  const b3 = h.b3;
  if (typeof b3 === 'string') { const d = b3.indexOf('-'); return d > 0 ? b3.slice(0, d) : undefined; }
  const t = h['x-b3-traceid'];
  return typeof t === 'string' ? t : undefined;
}
