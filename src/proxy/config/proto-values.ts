/**
 * Readers for proto3 JSON values as proto-loader and Envoy bootstrap files write
 * them. Each failure names the place in the resource (`virtual_hosts[0].routes[2].match`)
 * so that a NACK's error_detail says exactly what was refused.
 */
import { WeftError } from '../../lib/errors.js';
import type { ProtoJson } from './types.js';
// A cycle (oneof-markers.ts uses isObject from here), harmless: used only inside functions.
import { stripOneofMarkers } from './oneof-markers.js';

export class ConfigError extends WeftError {
  readonly path: string;
  constructor(path: string, message: string, cause?: unknown) {
    super('WEFT_ERR_INVALID', path === '' ? message : `${path}: ${message}`, { cause, details: [{ path, message }] });
    this.name = 'ConfigError';
    this.path = path;
  }
}

export function fail(path: string, message: string, cause?: unknown): never {
  throw new ConfigError(path, message, cause);
}

export function isObject(v: unknown): v is ProtoJson {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function obj(v: unknown, path: string): ProtoJson {
  if (!isObject(v)) fail(path, 'must be an object');
  return v;
}

export function optObj(v: unknown, path: string): ProtoJson | undefined {
  return v === undefined || v === null ? undefined : obj(v, path);
}

export function arr(v: unknown, path: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) fail(path, 'must be a list');
  return v;
}

export function str(v: unknown, path: string): string {
  if (typeof v !== 'string') fail(path, 'must be a string');
  return v;
}

export function optStr(v: unknown, path: string): string | undefined {
  return v === undefined || v === null ? undefined : str(v, path);
}

export function bool(v: unknown, path: string, dflt = false): boolean {
  if (v === undefined || v === null) return dflt;
  // google.protobuf.BoolValue arrives as { value } from the wire, plain from YAML.
  if (isObject(v)) return bool(v.value, path, false);
  if (typeof v !== 'boolean') fail(path, 'must be a boolean');
  return v;
}

/** A uint32/int64 field or a UInt32Value wrapper (`{ value }` on the wire, a plain number in YAML). */
export function num(v: unknown, path: string, dflt: number): number {
  if (v === undefined || v === null) return dflt;
  if (isObject(v)) return num(v.value, path, 0);
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n)) fail(path, 'must be a number');
  return n;
}

/**
 * A google.protobuf.Duration: `{ seconds, nanos }` (seconds is a string with
 * longs: String) or the JSON mapping `"1.5s"` used by bootstrap files. Returns ms.
 */
export function durationMs(v: unknown, path: string, dflt: number): number {
  if (v === undefined || v === null) return dflt;
  if (typeof v === 'string') {
    const m = /^(-?\d+(?:\.\d+)?)s$/.exec(v.trim());
    if (m === null) fail(path, `invalid duration "${v}" (want e.g. "1.5s")`);
    return Math.round(Number(m[1]) * 1000);
  }
  if (isObject(v)) {
    const s = num(v.seconds, `${path}.seconds`, 0);
    const ns = num(v.nanos, `${path}.nanos`, 0);
    const ms = s * 1000 + ns / 1e6;
    if (ms < 0) fail(path, 'must not be negative');
    return Math.round(ms);
  }
  return fail(path, 'must be a duration');
}

/** Enum as a string (enums: String); numbers are accepted from hand-written files. */
export function enumStr<T extends string>(v: unknown, path: string, values: readonly T[], dflt: T): T {
  if (v === undefined || v === null) return dflt;
  if (typeof v === 'number') {
    const byIndex = values[v];
    if (byIndex === undefined) fail(path, `unknown enum value ${v}`);
    return byIndex;
  }
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) fail(path, `unsupported value ${JSON.stringify(v)} (supported: ${values.join(', ')})`);
  return v as T;
}

/** Envoy's address `{ socket_address: { address, port_value } }`. */
export function socketAddress(v: unknown, path: string): { host: string; port: number } {
  const a = obj(v, path);
  if (a.socket_address === undefined) fail(path, 'only socket_address is supported (no pipe or internal addresses)');
  const sa = obj(a.socket_address, `${path}.socket_address`);
  const host = str(sa.address, `${path}.socket_address.address`);
  if (sa.named_port !== undefined) fail(`${path}.socket_address.named_port`, 'named ports are not supported');
  const protocol = sa.protocol;
  if (protocol !== undefined && protocol !== 'TCP' && protocol !== 0) fail(`${path}.socket_address.protocol`, 'only TCP is supported');
  const port = num(sa.port_value, `${path}.socket_address.port_value`, 0);
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`${path}.socket_address.port_value`, 'must be a port number');
  return { host, port };
}

/**
 * Envoy's regexes are RE2; JavaScript's differ in corner cases (RE2 has no
 * backreferences or lookaround; both are refused here so a config behaves the
 * same under Envoy and Weft). Envoy matches the whole value.
 */
export function compileRegex(v: unknown, path: string, fullMatch = true, flags = ''): RegExp {
  const m = obj(v, path);
  const re = str(m.regex, `${path}.regex`);
  if (/\\[1-9]|\(\?[=!<]/.test(re)) fail(`${path}.regex`, 'backreferences and lookaround are not RE2 and are refused');
  try {
    return new RegExp(fullMatch ? `^(?:${re})$` : re, flags);
  } catch (e) {
    return fail(`${path}.regex`, `invalid regex: ${(e as Error).message}`, e);
  }
}

/** Fields of an Any-typed config; `@type` is checked against what we can honour. */
export function typedConfig(v: unknown, path: string): { type: string; fields: ProtoJson } {
  const t = obj(v, path);
  const url = str(t['@type'], `${path}.@type`);
  // Filter configs are read with "exactly one of" checks: proto-loader's oneof markers must not count.
  return { type: url.slice(url.lastIndexOf('/') + 1), fields: stripOneofMarkers(t) as ProtoJson };
}
