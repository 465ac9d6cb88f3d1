/**
 * Mesh `spec.accessLog` and `spec.tracing` → the HttpConnectionManager fields that
 * carry them (`access_log`, `tracing`), for every HCM of a Weft proxy: the outbound
 * listener here (listeners.ts) and the inbound one (inbound.ts calls it with
 * 'inbound'). Plain Envoy config, so Envoy pointed at the control plane logs and
 * traces the same way.
 *
 * - accessLog.path `stdout` / `stderr` → envoy.access_loggers.stdout / stderr;
 *   `off` → none; anything else → envoy.access_loggers.file at that path.
 * - format json → `json_format` with ACCESS_LOG_FIELDS (Envoy command operators);
 *   text → a text format with the same fields in the same order.
 * - tracing with a collector → provider envoy.tracers.opentelemetry over
 *   `http_service` (OTLP/HTTP), random_sampling = spec.tracing.sampling %. Without a
 *   collector there is nothing to export to, so no tracing block (headers still pass
 *   through untouched).
 */
import type { Resource } from '../../api/types.js';
import type { MeshSpec } from '../../api/mesh/mesh.js';
import { TYPE_PREFIX } from '../../xds/type-urls.js';

export type TrafficDirection = 'inbound' | 'outbound';

const FILE_LOG = `${TYPE_PREFIX}envoy.extensions.access_loggers.file.v3.FileAccessLog`;
const STDOUT_LOG = `${TYPE_PREFIX}envoy.extensions.access_loggers.stream.v3.StdoutAccessLog`;
const STDERR_LOG = `${TYPE_PREFIX}envoy.extensions.access_loggers.stream.v3.StderrAccessLog`;
const OTEL_TRACER = `${TYPE_PREFIX}envoy.config.trace.v3.OpenTelemetryConfig`;
/** Envoy's HttpUri needs a cluster name; the Weft proxy exports straight to the URI with the OpenTelemetry SDK. */
export const TRACING_COLLECTOR_CLUSTER = 'weft|otel-collector';

/**
 * The access log's fields, as Envoy command operators. Principals: on inbound the
 * downstream peer is the source and this proxy the destination; on outbound this
 * proxy (the upstream connection's local end) is the source.
 */
export function accessLogFields(direction: TrafficDirection): [string, string][] {
  return [
    ['time', '%START_TIME%'],
    ['method', '%REQ(:METHOD)%'],
    ['authority', '%REQ(:AUTHORITY)%'],
    ['path', '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%'],
    ['protocol', '%PROTOCOL%'],
    ['status', '%RESPONSE_CODE%'],
    ['response_flags', '%RESPONSE_FLAGS%'],
    ['duration_ms', '%DURATION%'],
    ['bytes_received', '%BYTES_RECEIVED%'],
    ['bytes_sent', '%BYTES_SENT%'],
    ['upstream_host', '%UPSTREAM_HOST%'],
    ['upstream_cluster', '%UPSTREAM_CLUSTER%'],
    ['route', '%ROUTE_NAME%'],
    ['source_principal', direction === 'inbound' ? '%DOWNSTREAM_PEER_URI_SAN%' : '%UPSTREAM_LOCAL_URI_SAN%'],
    ['destination_principal', direction === 'inbound' ? '%DOWNSTREAM_LOCAL_URI_SAN%' : '%UPSTREAM_PEER_URI_SAN%'],
    ['trace_id', '%TRACE_ID%'],
    ['request_id', '%REQ(X-REQUEST-ID)%'],
    ['user_agent', '%REQ(USER-AGENT)%'],
    ['x_forwarded_for', '%REQ(X-FORWARDED-FOR)%'],
    ['direction', direction],
  ];
}

function accessLog(spec: MeshSpec['accessLog'], direction: TrafficDirection): Record<string, unknown>[] {
  if (spec.path === 'off') return [];
  const fields = accessLogFields(direction);
  // Struct as proto-loader encodes it (google.protobuf.Value's camelCase fields).
  const logFormat = spec.format === 'json'
    ? { json_format: { fields: Object.fromEntries(fields.map(([k, v]) => [k, { stringValue: v }])) } }
    : { text_format_source: { inline_string: `${fields.map(([k, v]) => `${k}=${v.startsWith('%') ? `"${v}"` : v}`).join(' ')}\n` } };
  if (spec.path === 'stdout' || spec.path === 'stderr') {
    return [{ name: `envoy.access_loggers.${spec.path}`, typed_config: { '@type': spec.path === 'stdout' ? STDOUT_LOG : STDERR_LOG, log_format: logFormat } }];
  }
  return [{ name: 'envoy.access_loggers.file', typed_config: { '@type': FILE_LOG, path: spec.path, log_format: logFormat } }];
}

function tracing(spec: MeshSpec['tracing']): Record<string, unknown> | undefined {
  const endpoint = spec.collector?.endpoint;
  if (endpoint === undefined) return undefined;
  return {
    random_sampling: { value: spec.sampling },
    provider: {
      name: 'envoy.tracers.opentelemetry',
      typed_config: {
        '@type': OTEL_TRACER,
        http_service: { http_uri: { uri: endpoint, cluster: TRACING_COLLECTOR_CLUSTER, timeout: { seconds: 5 } } },
      },
    },
  };
}

/**
 * The HCM fields for the Mesh's telemetry settings, to spread into an HCM's typed
 * config. No Mesh, or a Mesh with access logs `off` and no collector: `{}`.
 */
export function hcmTelemetry(mesh: Resource<MeshSpec> | undefined, direction: TrafficDirection): Record<string, unknown> {
  if (mesh === undefined) return {};
  const out: Record<string, unknown> = {};
  const logs = accessLog(mesh.spec.accessLog, direction);
  if (logs.length > 0) out.access_log = logs;
  const t = tracing(mesh.spec.tracing);
  if (t !== undefined) out.tracing = t;
  return out;
}
