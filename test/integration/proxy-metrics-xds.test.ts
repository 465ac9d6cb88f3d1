// The Mesh's telemetry settings as the control plane emits them (hcmTelemetry in the
// outbound listener), through the real xDS wire encoding (the Envoy protos the ADS
// server serializes with) and back, into the proxy's listener compiler: what a proxy
// connected to the control plane receives. Also the error paths of the compilers.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { envoyPackageDefinition } from '../../src/xds/protos.js';
import { checkXdsResource } from '../../src/xds/proto-check.js';
import { LISTENER } from '../../src/xds/type-urls.js';
import { generateOutboundListener } from '../../src/control/xds/listeners.js';
import { hcmTelemetry } from '../../src/control/xds/telemetry.js';
import type { Resource } from '../../src/api/types.js';
import type { MeshSpec } from '../../src/api/mesh/mesh.js';
import { compileListener } from '../../src/proxy/config/compile-listener.js';
import { compileAccessLogs } from '../../src/proxy/observability/access-log.js';
import { compileTracing } from '../../src/proxy/observability/tracing.js';
import type { AccessLogEntry } from '../../src/proxy/http/forward.js';

type Spec = Partial<Pick<MeshSpec, 'accessLog' | 'tracing'>>;

function mesh(spec: Spec): Resource<MeshSpec> {
  return {
    apiVersion: 'weft.dev/v1alpha1', kind: 'Mesh', metadata: { name: 'default' },
    spec: { trustDomain: 'cluster.local', mtls: { mode: 'PERMISSIVE' }, certificates: { workloadTTL: '24h' }, tracing: { sampling: 1 }, accessLog: { format: 'json', path: 'stdout' }, outboundPolicy: 'ALLOW_ANY', ...spec },
  };
}

/** Serialize with the Envoy descriptors and parse back, as the wire does. */
function roundTrip(listener: Record<string, unknown>): Record<string, unknown> {
  const def = envoyPackageDefinition()['envoy.config.listener.v3.Listener'] as unknown as { serialize(v: object): Buffer; deserialize(b: Buffer): Record<string, unknown> };
  return { '@type': LISTENER, ...def.deserialize(def.serialize(listener)) };
}

const entry: AccessLogEntry = {
  startTime: Date.parse('2026-01-02T03:04:05.678Z'), method: 'GET', authority: 'catalog.shop', path: '/items', status: 503, flag: 'UH',
  routeName: 'r1', cluster: 'outbound|80||catalog.shop', upstreamHost: undefined, durationMs: 12.4, requestId: 'rid-1',
  protocol: 'HTTP/1.1', bytesReceived: 3, bytesSent: 19, userAgent: 'curl/8', xForwardedFor: '127.0.0.1', traceId: 'abc', inbound: false,
  sourcePrincipal: 'spiffe://cluster.local/ns/shop/sa/web', destinationPrincipal: undefined, downstreamAddress: '127.0.0.1', requestHeaders: { 'x-custom': 'v' },
};

describe('Mesh telemetry → xDS → proxy', () => {
  test('no Mesh, or logs off and no collector: the HCM carries nothing', () => {
    assert.deepEqual(hcmTelemetry(undefined, 'outbound'), {});
    assert.deepEqual(hcmTelemetry(mesh({ accessLog: { format: 'json', path: 'off' } }), 'inbound'), {});
  });

  test('JSON file access log and OpenTelemetry tracing survive the wire and compile', () => {
    const m = mesh({ accessLog: { format: 'json', path: '/var/log/weft/access.log' }, tracing: { sampling: 12.5, collector: { endpoint: 'http://otel.example:4318' } } });
    const l = generateOutboundListener(undefined, m);
    assert.deepEqual(checkXdsResource(LISTENER, l), []);
    const compiled = compileListener(roundTrip(l));
    const hcm = compiled!.hcm!;
    assert.equal(hcm.accessLogs?.length, 1);
    const log = hcm.accessLogs![0]!;
    assert.deepEqual({ path: log.path, format: log.format }, { path: '/var/log/weft/access.log', format: 'json' });
    const line = JSON.parse(log.render(entry)) as Record<string, unknown>;
    assert.deepEqual(line, {
      time: '2026-01-02T03:04:05.678Z', method: 'GET', authority: 'catalog.shop', path: '/items', protocol: 'HTTP/1.1', status: 503,
      response_flags: 'UH', duration_ms: 12, bytes_received: 3, bytes_sent: 19, upstream_host: null, upstream_cluster: 'outbound|80||catalog.shop',
      route: 'r1', source_principal: 'spiffe://cluster.local/ns/shop/sa/web', destination_principal: null, trace_id: 'abc', request_id: 'rid-1',
      user_agent: 'curl/8', x_forwarded_for: '127.0.0.1', direction: 'outbound',
    });
    assert.deepEqual(hcm.tracing, { endpoint: 'http://otel.example:4318/v1/traces', samplingPct: 12.5, serviceName: undefined });
  });

  test('text format to stdout', () => {
    const l = generateOutboundListener(undefined, mesh({ accessLog: { format: 'text', path: 'stdout' } }));
    assert.deepEqual(checkXdsResource(LISTENER, l), []);
    const log = compileListener(roundTrip(l))!.hcm!.accessLogs![0]!;
    assert.equal(log.path, '/dev/stdout');
    assert.equal(log.format, 'text');
    const text = log.render(entry);
    assert.match(text, /^time="2026-01-02T03:04:05.678Z" method="GET" authority="catalog.shop" path="\/items" protocol="HTTP\/1.1" status="503" response_flags="UH" /);
    assert.match(text, /upstream_host="-"/);
    assert.match(text, / direction=outbound\n$/);
  });

  test('Envoy-style static config: plain json_format, REQ() with fallback and length, Envoy default format', () => {
    const [json, text, dflt] = compileAccessLogs([
      { name: 'f', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog', path: '/tmp/x.log', log_format: { json_format: { c: '%REQ(X-CUSTOM)%', missing: '%REQ(X-NONE?X-CUSTOM)%', cut: '%REQ(USER-AGENT):3%', lit: 'a-%RESPONSE_CODE%', n: 7 } } } },
      { name: 's', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog', log_format: { text_format_source: { inline_string: '%REQ(:METHOD)% %DURATION%ms\n' } } } },
      { name: 'd', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog' } },
    ], 'access_log');
    assert.deepEqual(JSON.parse(json!.render(entry)), { c: 'v', missing: 'v', cut: 'cur', lit: 'a-503', n: 7 });
    assert.equal(text!.path, '/dev/stderr');
    assert.equal(text!.render(entry), 'GET 12ms\n');
    assert.match(dflt!.render(entry), /^\[2026-01-02T03:04:05.678Z\] "GET \/items HTTP\/1.1" 503 UH 3 19 12 - "127.0.0.1" "curl\/8" "rid-1" "catalog.shop" "-"\n$/);
  });

  test('what the proxy cannot honour is refused (a NACK), not logged wrong', () => {
    const file = (fmt: Record<string, unknown>): unknown[] => [{ name: 'f', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog', path: '/tmp/x', log_format: fmt } }];
    assert.throws(() => compileAccessLogs(file({ text_format_source: { inline_string: '%UPSTREAM_TRANSPORT_FAILURE_REASON%' } }), 'al'), /UPSTREAM_TRANSPORT_FAILURE_REASON% is not supported/);
    assert.throws(() => compileAccessLogs([{ name: 'g', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig' } }], 'al'), /not supported/);
    assert.throws(() => compileTracing({ provider: { name: 'z', typed_config: { '@type': 'type.googleapis.com/envoy.config.trace.v3.ZipkinConfig' } } }, 'tracing'), /not supported/);
    assert.throws(() => compileTracing({ provider: { name: 'o', typed_config: { '@type': 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig', grpc_service: {} } } }, 'tracing'), /gRPC is not supported/);
    assert.throws(() => compileTracing({ random_sampling: { value: 150 }, provider: { name: 'o', typed_config: { '@type': 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig', http_service: { http_uri: { uri: 'http://x:4318' } } } } }, 'tracing'), /between 0 and 100/);
  });
});
