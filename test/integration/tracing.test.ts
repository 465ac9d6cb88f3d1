// Trace propagation through two real proxies and a test app:
// client → proxy "web" (outbound, CLIENT span) → proxy "catalog" (inbound, SERVER span) → app.
// Both proxies export OTLP/HTTP (JSON) to a receiver on port 0; the receiver reads the
// export with OpenTelemetry's own OTLP types. One trace id end to end, parents right,
// for W3C traceparent, B3 multi-header, single `b3`, and no incoming context.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { IExportTraceServiceRequest, ISpan } from '@opentelemetry/otlp-transformer/build/src/trace/internal-types.js';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { hcmTelemetry } from '../../src/control/xds/telemetry.js';
import type { Resource } from '../../src/api/types.js';
import type { MeshSpec } from '../../src/api/mesh/mesh.js';
import { shutdownTracing, tracingReady } from '../../src/proxy/observability/tracing.js';
import { call, listener, routeConfig, staticCluster, startUpstream, waitFor, type Upstream } from '../fixtures/proxy/helpers.js';

// OTLP SpanKind numbers (opentelemetry-proto trace.proto), not the API's enum.
const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CLIENT = 3;

interface Received { service: string; span: ISpan }

let receiver: Server;
const received: Received[] = [];
let app: Upstream;
let web: Proxy;
let catalog: Proxy;
let port: number;

function mesh(endpoint: string, sampling: number): Resource<MeshSpec> {
  return {
    apiVersion: 'weft.dev/v1alpha1', kind: 'Mesh', metadata: { name: 'default' },
    spec: { trustDomain: 'cluster.local', mtls: { mode: 'PERMISSIVE' }, certificates: { workloadTTL: '24h' }, tracing: { sampling, collector: { endpoint } }, accessLog: { format: 'json', path: 'off' }, outboundPolicy: 'ALLOW_ANY' },
  };
}

function attr(s: ISpan, key: string): unknown {
  const a = s.attributes.find((x) => x.key === key);
  return a === undefined ? undefined : (a.value.stringValue ?? a.value.intValue ?? a.value.boolValue);
}

function spansOf(traceId: string): Received[] {
  return received.filter((r) => r.span.traceId === traceId);
}

before(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      assert.equal(req.url, '/v1/traces');
      assert.match(String(req.headers['content-type']), /application\/json/);
      const body = JSON.parse(Buffer.concat(chunks).toString()) as IExportTraceServiceRequest;
      for (const rs of body.resourceSpans ?? []) {
        const service = rs.resource?.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
        for (const ss of rs.scopeSpans) for (const span of ss.spans ?? []) received.push({ service, span });
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  const endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  app = await startUpstream('app');
  // A port nothing listens on (bound, then closed): connect failures, flag UF.
  const dead = createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', () => r()));
  const deadPort = (dead.address() as AddressInfo).port;
  await new Promise<void>((r) => dead.close(() => r()));

  catalog = await startProxy({
    adminAddr: '127.0.0.1:0', logLevel: 'silent',
    node: { metadata: { WEFT_SERVICE: 'catalog', WEFT_NAMESPACE: 'shop' } },
    bootstrap: {
      static_resources: {
        listeners: [{
          ...listener('inbound', { route_config: routeConfig('in', [{ name: 'in', domains: ['*'], routes: [{ match: { prefix: '/fail' }, route: { cluster: 'dead' } }, { match: { prefix: '/' }, route: { cluster: 'app' } }] }]) }, 0, hcmTelemetry(mesh(endpoint, 100), 'inbound')),
          traffic_direction: 'INBOUND',
        }],
        clusters: [staticCluster('app', [app.port]), staticCluster('dead', [deadPort])],
      },
    },
  });
  web = await startProxy({
    adminAddr: '127.0.0.1:0', logLevel: 'silent',
    node: { metadata: { WEFT_SERVICE: 'web', WEFT_NAMESPACE: 'shop' } },
    bootstrap: {
      static_resources: {
        listeners: [{
          ...listener('outbound', { route_config: routeConfig('out', [{ name: 'c', domains: ['*'], routes: [{ name: 'catalog', match: { prefix: '/' }, route: { cluster: 'outbound|8080||catalog.shop' } }] }]) }, 0, hcmTelemetry(mesh(endpoint, 100), 'outbound')),
          traffic_direction: 'OUTBOUND',
        }],
        clusters: [staticCluster('outbound|8080||catalog.shop', [catalog.listenerPort('inbound')!])],
      },
    },
  });
  port = web.listenerPort('outbound')!;
  // The OpenTelemetry packages load on first use: one request each proxy starts the load.
  await call(port, '/warm-up', { headers: { host: 'catalog.shop' } });
  await tracingReady();
});

after(async () => {
  await web?.close();
  await catalog?.close();
  await shutdownTracing();
  await app?.close();
  await new Promise<void>((r) => receiver.close(() => r()));
});

/** The two spans of one trace (web's CLIENT, catalog's SERVER), once both arrived. */
async function twoSpans(traceId: string): Promise<{ client: Received; server: Received }> {
  return waitFor(`spans of trace ${traceId}`, () => {
    const s = spansOf(traceId);
    const client = s.find((r) => r.span.kind === SPAN_KIND_CLIENT);
    const server = s.find((r) => r.span.kind === SPAN_KIND_SERVER);
    return client !== undefined && server !== undefined ? { client, server } : undefined;
  }, 15_000);
}

describe('tracing through two proxies', () => {
  test('W3C traceparent: continued, one trace, parent/child right, app sees the server span', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const parent = '00f067aa0ba902b7';
    const before = app.seen.length;
    const r = await call(port, '/items/7', { headers: { host: 'catalog.shop', traceparent: `00-${traceId}-${parent}-01`, tracestate: 'vendor=x', 'user-agent': 'trace-test/1' } });
    assert.equal(r.status, 200);
    const { client, server } = await twoSpans(traceId);
    assert.equal(client.service, 'web.shop');
    assert.equal(server.service, 'catalog.shop');
    assert.equal(client.span.parentSpanId, parent);
    assert.equal(server.span.parentSpanId, client.span.spanId);
    assert.equal(spansOf(traceId).length, 2);
    const seen = app.seen[before]!.headers;
    assert.equal(seen.traceparent, `00-${traceId}-${String(server.span.spanId)}-01`);
    assert.equal(seen.tracestate, 'vendor=x');
    assert.equal(seen['x-b3-traceid'], undefined, 'no B3 when the request came without it');
    // HTTP semantic conventions.
    for (const s of [client.span, server.span]) {
      assert.equal(attr(s, 'http.request.method'), 'GET');
      assert.equal(attr(s, 'url.path'), '/items/7');
      assert.equal(attr(s, 'server.address'), 'catalog.shop');
      assert.equal(Number(attr(s, 'http.response.status_code')), 200);
      assert.equal(attr(s, 'user_agent.original'), 'trace-test/1');
    }
    assert.equal(attr(client.span, 'weft.upstream_cluster'), 'outbound|8080||catalog.shop');
  });

  test('B3 multi-header: continued, and passed on as B3 and traceparent', async () => {
    const traceId = '463ac35c9f6413ad48485a3953bb6124';
    const parent = '0020000000000001';
    const before = app.seen.length;
    await call(port, '/b3', { headers: { host: 'catalog.shop', 'x-b3-traceid': traceId, 'x-b3-spanid': parent, 'x-b3-sampled': '1' } });
    const { client, server } = await twoSpans(traceId);
    assert.equal(client.span.parentSpanId, parent);
    assert.equal(server.span.parentSpanId, client.span.spanId);
    const seen = app.seen[before]!.headers;
    assert.equal(seen.traceparent, `00-${traceId}-${String(server.span.spanId)}-01`);
    assert.equal(seen['x-b3-traceid'], traceId);
    assert.equal(seen['x-b3-spanid'], server.span.spanId);
  });

  test('single b3 header: continued, and passed on in the same encoding', async () => {
    const traceId = '80f198ee56343ba864fe8b2a57d3eff7';
    const parent = 'e457b5a2e4d86bd1';
    const before = app.seen.length;
    await call(port, '/b3-single', { headers: { host: 'catalog.shop', b3: `${traceId}-${parent}-1` } });
    const { client, server } = await twoSpans(traceId);
    assert.equal(client.span.parentSpanId, parent);
    assert.equal(server.span.parentSpanId, client.span.spanId);
    const seen = app.seen[before]!.headers;
    assert.equal(seen.b3, `${traceId}-${String(server.span.spanId)}-1`);
    assert.equal(seen['x-b3-traceid'], undefined);
  });

  test('no incoming context: the outbound proxy starts the trace (sampling 100 %)', async () => {
    const before = app.seen.length;
    await call(port, '/root', { headers: { host: 'catalog.shop' } });
    const tp = String(app.seen[before]!.headers.traceparent);
    const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(tp);
    assert.ok(m, `traceparent ${tp}`);
    const { client, server } = await twoSpans(m[1]!);
    assert.ok(client.span.parentSpanId === undefined || client.span.parentSpanId === '', 'the client span is the root');
    assert.equal(server.span.parentSpanId, client.span.spanId);
    assert.equal(server.span.spanId, m[2]);
  });

  test('a 503 UF at the inbound proxy marks both spans as errors', async () => {
    const traceId = 'aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb';
    const r = await call(port, '/fail', { headers: { host: 'catalog.shop', traceparent: `00-${traceId}-cccccccccccccccc-01` } });
    assert.equal(r.status, 503);
    const { client, server } = await twoSpans(traceId);
    assert.equal(Number(attr(client.span, 'http.response.status_code')), 503);
    assert.equal(Number(attr(server.span, 'http.response.status_code')), 503);
    assert.equal(attr(server.span, 'weft.response_flags'), 'UF');
    assert.equal(attr(server.span, 'error.type'), 'UF');
    // OTLP status code 2 = ERROR.
    assert.equal(server.span.status.code, 2);
    assert.equal(client.span.status.code, 2);
  });
});
