/**
 * The keys a proxy puts in its xDS `node.metadata` to register its workload.
 * These are an interface (Weft's proxy and `weft bootstrap grpc` write them):
 *
 * | key                     | value                                                       |
 * |-------------------------|-------------------------------------------------------------|
 * | `WEFT_NAMESPACE`        | namespace of the workload (default `default`); also the view |
 * | `WEFT_SERVICE`          | the Service it serves; adds label `weft.dev/service=<name>`  |
 * | `WEFT_WORKLOAD_ADDRESS` | IP literal it is reached at; without it nothing registers    |
 * | `WEFT_WORKLOAD_PORTS`   | `8080,9090`, or a JSON array of ports or `{port,name?,protocol?}` |
 * | `WEFT_LABELS`           | JSON object, or `k=v,k2=v2`                                  |
 * | `WEFT_SERVICE_ACCOUNT`  | service account (default `default`)                          |
 * | `WEFT_WORKLOAD_NAME`    | object name; default `<service>-<hash of node id>`           |
 * | `WEFT_NAMESPACES`       | scope: more namespaces whose Services it sees (`a,b` or JSON list; `*` = all) |
 * | `WEFT_DEPENDENCIES`     | scope: more hosts it sees, `name.namespace` (`a.shop,b.pay` or JSON list) |
 * | `WEFT_INBOUND_PORT`     | a Weft sidecar: the port its inbound listener is bound on. Peers reach the workload there, over mTLS, and the proxy gets the inbound listener of its WEFT_SERVICE |
 * | `WEFT_GRPC_MTLS`        | proxyless gRPC with certificate providers (`true`): its clusters and server listeners carry mTLS |
 *
 * Scope (like an Istio Sidecar's egress hosts): a proxy that sets neither
 * WEFT_NAMESPACES nor WEFT_DEPENDENCIES sees every namespace (Istio's default
 * and Weft's behaviour before scoping). One that sets either sees its own
 * namespace plus what they list, and gets clusters, endpoints, listeners and
 * routes for those Services only (control/xds/model.ts: scopeOf, inScope).
 *
 * The locality comes from `node.locality`. Values may be strings or (for ports
 * and labels) the JSON structures themselves.
 */
export const META = {
  namespace: 'WEFT_NAMESPACE',
  service: 'WEFT_SERVICE',
  address: 'WEFT_WORKLOAD_ADDRESS',
  ports: 'WEFT_WORKLOAD_PORTS',
  labels: 'WEFT_LABELS',
  serviceAccount: 'WEFT_SERVICE_ACCOUNT',
  name: 'WEFT_WORKLOAD_NAME',
  namespaces: 'WEFT_NAMESPACES',
  dependencies: 'WEFT_DEPENDENCIES',
  inboundPort: 'WEFT_INBOUND_PORT',
  grpcMtls: 'WEFT_GRPC_MTLS',
} as const;

/** WEFT_INBOUND_PORT as a port, or undefined when absent; throws when it is not a port. */
export function parseInboundPort(v: Json | undefined): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${META.inboundPort}: ${JSON.stringify(v)} is not a port`);
  return n;
}

/** A boolean flag in node metadata (`true`, "true", "1"). */
export function metaFlag(v: Json | undefined): boolean {
  return v === true || v === 'true' || v === '1';
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/**
 * google.protobuf.Struct/Value as protobufjs handles them: its built-in copy of
 * struct.proto has camelCase field names (`stringValue`) whatever `keepCase`
 * says, so those are what arrive and what must be sent. snake_case is read too.
 */
interface ProtoValue {
  nullValue?: unknown;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: ProtoStruct;
  listValue?: { values?: ProtoValue[] };
  null_value?: unknown;
  number_value?: number;
  string_value?: string;
  bool_value?: boolean;
  struct_value?: ProtoStruct;
  list_value?: { values?: ProtoValue[] };
}
export interface ProtoStruct {
  fields?: Record<string, ProtoValue>;
}

function fromValue(v: ProtoValue): Json {
  const str = v.stringValue ?? v.string_value;
  if (str !== undefined) return str;
  const num = v.numberValue ?? v.number_value;
  if (num !== undefined) return num;
  const bool = v.boolValue ?? v.bool_value;
  if (bool !== undefined) return bool;
  const struct = v.structValue ?? v.struct_value;
  if (struct !== undefined) return structToJson(struct);
  const list = v.listValue ?? v.list_value;
  if (list !== undefined) return (list.values ?? []).map(fromValue);
  return null;
}

/** google.protobuf.Struct as proto-loader decodes it → plain JSON. */
export function structToJson(s: ProtoStruct | null | undefined): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const [k, v] of Object.entries(s?.fields ?? {})) out[k] = fromValue(v);
  return out;
}

/** Plain JSON → google.protobuf.Struct, in the form protobufjs encodes. */
export function jsonToStruct(obj: Record<string, unknown>): ProtoStruct {
  const toValue = (v: unknown): ProtoValue => {
    if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
    if (typeof v === 'string') return { stringValue: v };
    if (typeof v === 'number') return { numberValue: v };
    if (typeof v === 'boolean') return { boolValue: v };
    if (Array.isArray(v)) return { listValue: { values: v.map(toValue) } };
    return { structValue: jsonToStruct(v as Record<string, unknown>) };
  };
  const fields: Record<string, ProtoValue> = {};
  for (const [k, v] of Object.entries(obj)) fields[k] = toValue(v);
  return { fields };
}

export interface ParsedPort {
  port: number;
  name?: string;
  protocol?: 'http' | 'http2' | 'grpc' | 'tcp';
}

const PROTOCOLS = new Set(['http', 'http2', 'grpc', 'tcp']);

export function parsePorts(v: Json | undefined): ParsedPort[] {
  let list: Json = v ?? [];
  if (typeof list === 'string') {
    const t = list.trim();
    if (t.startsWith('[')) list = JSON.parse(t) as Json;
    else list = t === '' ? [] : t.split(',').map((s) => Number(s.trim()));
  }
  if (typeof list === 'number') list = [list];
  if (!Array.isArray(list)) throw new Error(`${META.ports}: expected a list of ports`);
  return list.map((p) => {
    const obj = typeof p === 'object' && p !== null && !Array.isArray(p) ? p : { port: p };
    const port = Number(obj.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${META.ports}: ${JSON.stringify(p)} is not a port`);
    const out: ParsedPort = { port };
    if (typeof obj.name === 'string') out.name = obj.name;
    if (typeof obj.protocol === 'string' && PROTOCOLS.has(obj.protocol)) out.protocol = obj.protocol as ParsedPort['protocol'];
    return out;
  });
}

export function parseLabels(v: Json | undefined): Record<string, string> {
  if (v === undefined || v === null || v === '') return {};
  let obj: Json = v;
  if (typeof obj === 'string') {
    const t = obj.trim();
    if (t.startsWith('{')) obj = JSON.parse(t) as Json;
    else {
      const out: Record<string, string> = {};
      for (const pair of t.split(',')) {
        const i = pair.indexOf('=');
        if (i <= 0) throw new Error(`${META.labels}: "${pair}" is not key=value`);
        out[pair.slice(0, i).trim()] = pair.slice(i + 1).trim();
      }
      return out;
    }
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new Error(`${META.labels}: expected an object`);
  return Object.fromEntries(Object.entries(obj).map(([k, x]) => [k, String(x)]));
}
