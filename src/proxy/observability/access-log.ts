/**
 * HCM `access_log`: envoy.access_loggers.file (path, json_format or text format) and
 * envoy.access_loggers.stdout / stderr. The format is compiled once per config into
 * a function of the AccessLogEntry; Envoy's command operators are supported for the
 * subset a mesh uses (OPERATORS below); any other operator is refused at config time
 * (a NACK), not printed wrong.
 *
 * Lines go to a sink per path (sinks.ts): buffered, written asynchronously once per
 * tick, never blocking a request.
 */
import type { AccessLogEntry } from '../http/forward.js';
import { arr, fail, isObject, obj, str, typedConfig } from '../config/proto-values.js';
import type { ProtoJson } from '../config/types.js';
import { sinkFor, type LogSink } from './sinks.js';

const FILE_TYPE = 'envoy.extensions.access_loggers.file.v3.FileAccessLog';
const STDOUT_TYPE = 'envoy.extensions.access_loggers.stream.v3.StdoutAccessLog';
const STDERR_TYPE = 'envoy.extensions.access_loggers.stream.v3.StderrAccessLog';

/** Envoy's default text format. */
export const DEFAULT_TEXT_FORMAT = '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"\n';

type Value = string | number | undefined;
type Op = (e: AccessLogEntry) => Value;

function header(e: AccessLogEntry, name: string): string | undefined {
  switch (name) {
    case ':method': return e.method;
    case ':authority': case 'host': return e.authority === '' ? undefined : e.authority;
    case ':path': return e.path;
    case 'x-request-id': return e.requestId;
    case 'user-agent': return e.userAgent;
    case 'x-forwarded-for': return e.xForwardedFor;
    default: {
      const v = e.requestHeaders?.[name];
      return Array.isArray(v) ? v.join(',') : v;
    }
  }
}

/** Command operators by name; `REQ(...)` is handled apart. */
const OPERATORS: Readonly<Record<string, Op>> = {
  START_TIME: (e) => new Date(e.startTime).toISOString(),
  PROTOCOL: (e) => e.protocol,
  RESPONSE_CODE: (e) => e.status,
  RESPONSE_FLAGS: (e) => e.flag ?? '-',
  DURATION: (e) => Math.round(e.durationMs),
  BYTES_RECEIVED: (e) => e.bytesReceived ?? 0,
  BYTES_SENT: (e) => e.bytesSent ?? 0,
  UPSTREAM_HOST: (e) => e.upstreamHost,
  UPSTREAM_CLUSTER: (e) => e.cluster,
  ROUTE_NAME: (e) => e.routeName,
  TRACE_ID: (e) => e.traceId,
  DOWNSTREAM_REMOTE_ADDRESS: (e) => e.downstreamAddress,
  DOWNSTREAM_PEER_URI_SAN: (e) => (e.inbound === true ? e.sourcePrincipal : undefined),
  DOWNSTREAM_LOCAL_URI_SAN: (e) => (e.inbound === true ? e.destinationPrincipal : undefined),
  UPSTREAM_LOCAL_URI_SAN: (e) => (e.inbound === true ? undefined : e.sourcePrincipal),
  UPSTREAM_PEER_URI_SAN: (e) => (e.inbound === true ? undefined : e.destinationPrincipal),
  // The proxy does not keep response headers for the log; Envoy prints "-" for absent ones too.
  'RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)': () => undefined,
};

function compileOperator(spec: string, path: string): Op {
  const direct = OPERATORS[spec];
  if (direct !== undefined) return direct;
  const m = /^REQ\(([^)?]+)(?:\?([^)]+))?\)(?::(\d+))?$/.exec(spec);
  if (m !== null) {
    const first = m[1]!.toLowerCase();
    const alt = m[2]?.toLowerCase();
    const max = m[3] === undefined ? undefined : Number(m[3]);
    return (e) => {
      const v = header(e, first) ?? (alt === undefined ? undefined : header(e, alt));
      return v === undefined || max === undefined ? v : v.slice(0, max);
    };
  }
  return fail(path, `access log command operator %${spec}% is not supported (supported: ${[...Object.keys(OPERATORS), 'REQ(...)'].join(', ')})`);
}

type Part = string | Op;

/** A format string → its literal and operator parts. */
function compileTemplate(format: string, path: string): Part[] {
  const parts: Part[] = [];
  const re = /%([A-Z_]+(?:\([^)]*\))?(?::\d+)?)%/g;
  let last = 0;
  for (let m = re.exec(format); m !== null; m = re.exec(format)) {
    if (m.index > last) parts.push(format.slice(last, m.index));
    parts.push(compileOperator(m[1]!, path));
    last = m.index + m[0].length;
  }
  if (last < format.length) parts.push(format.slice(last));
  return parts;
}

function renderText(parts: readonly Part[], e: AccessLogEntry): string {
  let s = '';
  for (const p of parts) {
    if (typeof p === 'string') s += p;
    else { const v = p(e); s += v === undefined || v === '' ? '-' : String(v); }
  }
  return s;
}

/** google.protobuf.Struct as Envoy's JSON (`{k: "v"}`) or as proto-loader decodes it (`{fields: {k: {stringValue}}}`). */
function structEntries(v: unknown, path: string): [string, unknown][] {
  const o = obj(v, path);
  const fields = o.fields;
  if (Object.keys(o).length === 1 && isObject(fields)) {
    return Object.entries(fields).map(([k, val]) => {
      const x = obj(val, `${path}.fields.${k}`);
      if (typeof x.stringValue === 'string') return [k, x.stringValue];
      if (typeof x.numberValue === 'number') return [k, x.numberValue];
      if (typeof x.boolValue === 'boolean') return [k, x.boolValue];
      return fail(`${path}.fields.${k}`, 'only string, number and bool values are supported in json_format');
    });
  }
  return Object.entries(o);
}

type JsonField = readonly [string, Part[] | number | boolean];

function compileJson(v: unknown, path: string): (e: AccessLogEntry) => string {
  const fields: JsonField[] = structEntries(v, path).map(([k, val]) => {
    if (typeof val === 'number' || typeof val === 'boolean') return [k, val] as const;
    if (typeof val !== 'string') return fail(`${path}.${k}`, 'nested objects are not supported in json_format');
    return [k, compileTemplate(val, `${path}.${k}`)] as const;
  });
  return (e) => {
    const out: Record<string, unknown> = {};
    for (const [k, f] of fields) {
      if (typeof f !== 'object') { out[k] = f; continue; }
      // A lone operator keeps its type (numbers stay numbers; absent values are null), as Envoy does.
      if (f.length === 1 && typeof f[0] !== 'string') { out[k] = f[0]!(e) ?? null; continue; }
      out[k] = renderText(f, e);
    }
    return JSON.stringify(out) + '\n';
  };
}

export interface AccessLogConfig {
  readonly path: string;
  readonly format: 'json' | 'text';
  /** The line (with its newline) for an entry. */
  readonly render: (e: AccessLogEntry) => string;
}

function compileFormat(fields: ProtoJson, path: string): { format: 'json' | 'text'; render: (e: AccessLogEntry) => string } {
  const lf = fields.log_format === undefined ? undefined : obj(fields.log_format, `${path}.log_format`);
  if (lf?.json_format !== undefined) return { format: 'json', render: compileJson(lf.json_format, `${path}.log_format.json_format`) };
  let text: string | undefined;
  if (lf?.text_format_source !== undefined) {
    const src = obj(lf.text_format_source, `${path}.log_format.text_format_source`);
    text = str(src.inline_string, `${path}.log_format.text_format_source.inline_string`);
  } else if (lf?.text_format !== undefined) text = str(lf.text_format, `${path}.log_format.text_format`);
  else if (fields.format !== undefined) text = str(fields.format, `${path}.format`);
  else if (fields.json_format !== undefined) return { format: 'json', render: compileJson(fields.json_format, `${path}.json_format`) };
  const parts = compileTemplate(text ?? DEFAULT_TEXT_FORMAT, path);
  return { format: 'text', render: (e) => renderText(parts, e) };
}

/** HCM `access_log` entries → configs (filters on access logs are not supported). */
export function compileAccessLogs(v: unknown, path: string): readonly AccessLogConfig[] {
  return Object.freeze(arr(v, path).map((raw, i) => {
    const p = `${path}[${i}]`;
    const o = obj(raw, p);
    if (o.filter !== undefined) fail(`${p}.filter`, 'access log filters are not supported');
    const { type, fields } = typedConfig(o.typed_config, `${p}.typed_config`);
    const tp = `${p}.typed_config`;
    if (type === FILE_TYPE) {
      const file = str(fields.path, `${tp}.path`);
      return Object.freeze({ path: file, ...compileFormat(fields, tp) });
    }
    if (type === STDOUT_TYPE || type === STDERR_TYPE) return Object.freeze({ path: type === STDOUT_TYPE ? '/dev/stdout' : '/dev/stderr', ...compileFormat(fields, tp) });
    return fail(tp, `access logger ${type} is not supported (supported: ${FILE_TYPE}, ${STDOUT_TYPE}, ${STDERR_TYPE})`);
  }));
}

/** Writes one entry to every configured log; the sinks buffer, so this never waits. Returns the lines dropped. */
export function writeAccessLogs(logs: readonly AccessLogConfig[], e: AccessLogEntry): number {
  let dropped = 0;
  for (const l of logs) {
    const sink: LogSink = sinkFor(l.path);
    if (!sink.write(l.render(e))) dropped++;
  }
  return dropped;
}
