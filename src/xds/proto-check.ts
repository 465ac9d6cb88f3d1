import type { PackageDefinition } from '@grpc/proto-loader';
import { envoyPackageDefinition } from './protos.js';
import { TYPE_PREFIX } from './type-urls.js';

/**
 * A strict check of a resource written as a plain object (proto-loader's
 * `keepCase` + `json` form) against the loaded Envoy descriptors.
 *
 * protobufjs's `fromObject` silently drops fields it does not know, so a typo'd
 * field name would vanish on the wire and the client would see a different
 * config than the one we meant. This walks the object against the descriptors
 * and reports every unknown field, wrong scalar, unknown enum value and Any of
 * an unloaded type, with a path. Tests and the debug mode of the ADS server use
 * it; the hot path does not.
 */

interface FieldDescriptor {
  name: string;
  label: string;
  type: string;
  typeName: string;
}

interface MessageDescriptor {
  name: string;
  field: FieldDescriptor[];
  nestedType?: MessageDescriptor[];
  enumType?: EnumDescriptor[];
  options?: { mapEntry?: boolean } | null;
}

interface EnumDescriptor {
  name: string;
  value: { name: string; number: number }[];
}

const MESSAGE_FORMAT = 'Protocol Buffer 3 DescriptorProto';
const ENUM_FORMAT = 'Protocol Buffer 3 EnumDescriptorProto';

const INT_TYPES = new Set(['TYPE_INT32', 'TYPE_UINT32', 'TYPE_SINT32', 'TYPE_FIXED32', 'TYPE_SFIXED32']);
const LONG_TYPES = new Set(['TYPE_INT64', 'TYPE_UINT64', 'TYPE_SINT64', 'TYPE_FIXED64', 'TYPE_SFIXED64']);
const UNSIGNED = new Set(['TYPE_UINT32', 'TYPE_FIXED32', 'TYPE_UINT64', 'TYPE_FIXED64']);

export class ProtoChecker {
  private readonly resolved = new Map<string, string>();
  /** Every message and enum by full name, nested ones included (proto-loader lists only top-level ones). */
  private readonly messages = new Map<string, MessageDescriptor>();
  private readonly enums = new Map<string, EnumDescriptor>();

  constructor(def: PackageDefinition = envoyPackageDefinition()) {
    for (const [name, d] of Object.entries(def)) {
      const entry = d as { format?: string; type?: unknown };
      if (entry.format === MESSAGE_FORMAT) this.addMessage(name, entry.type as MessageDescriptor);
      else if (entry.format === ENUM_FORMAT) this.enums.set(name, entry.type as EnumDescriptor);
    }
  }

  private addMessage(name: string, m: MessageDescriptor): void {
    this.messages.set(name, m);
    for (const n of m.nestedType ?? []) this.addMessage(`${name}.${n.name}`, n);
    for (const e of m.enumType ?? []) this.enums.set(`${name}.${e.name}`, e);
  }

  /** Every problem found in `value` read as message `typeName` (full name, no leading dot). */
  check(typeName: string, value: unknown): string[] {
    const errors: string[] = [];
    this.checkMessage(typeName, value, '', errors);
    return errors;
  }

  /** Checks an xDS resource given its type URL. */
  checkResource(typeUrl: string, value: unknown): string[] {
    if (typeof value === 'object' && value !== null && '@type' in value) {
      const { ['@type']: t, ...rest } = value as Record<string, unknown>;
      if (t !== typeUrl) return [`@type: ${String(t)} is not ${typeUrl}`];
      return this.check(typeUrl.slice(TYPE_PREFIX.length), rest);
    }
    return this.check(typeUrl.slice(TYPE_PREFIX.length), value);
  }

  private message(name: string): MessageDescriptor | undefined {
    return this.messages.get(name);
  }

  private enumOf(name: string): EnumDescriptor | undefined {
    return this.enums.get(name);
  }

  /** Protobuf scoping: look the relative name up from the innermost scope outward. */
  private resolve(scope: string, ref: string): string | undefined {
    if (ref.startsWith('.')) return ref.slice(1);
    const key = `${scope}|${ref}`;
    const hit = this.resolved.get(key);
    if (hit !== undefined) return hit;
    const parts = scope.split('.');
    for (let i = parts.length; i >= 0; i--) {
      const candidate = [...parts.slice(0, i), ref].join('.');
      if (this.messages.has(candidate) || this.enums.has(candidate)) {
        this.resolved.set(key, candidate);
        return candidate;
      }
    }
    return undefined;
  }

  private checkMessage(typeName: string, value: unknown, path: string, errors: string[]): void {
    if (typeName === 'google.protobuf.Any') return this.checkAny(value, path, errors);
    const desc = this.message(typeName);
    if (desc === undefined) {
      errors.push(`${path || '<root>'}: message type ${typeName} is not loaded`);
      return;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      errors.push(`${path || '<root>'}: expected a ${typeName} object`);
      return;
    }
    if (typeName === 'google.protobuf.Struct' || typeName === 'google.protobuf.Value') return;
    const fields = new Map(desc.field.map((f) => [f.name, f]));
    for (const [k, v] of Object.entries(value)) {
      const at = path === '' ? k : `${path}.${k}`;
      const f = fields.get(k);
      if (f === undefined) {
        errors.push(`${at}: no such field in ${typeName}`);
        continue;
      }
      if (v === undefined || v === null) continue;
      if (f.label === 'LABEL_REPEATED') {
        const entryName = f.type === 'TYPE_MESSAGE' ? this.resolve(typeName, f.typeName) : undefined;
        const entry = entryName === undefined ? undefined : this.message(entryName);
        if (entry?.options?.mapEntry) {
          this.checkMap(typeName, entryName ?? '', entry, v, at, errors);
          continue;
        }
        if (!Array.isArray(v)) {
          errors.push(`${at}: expected a list`);
          continue;
        }
        v.forEach((item, i) => this.checkField(typeName, f, item, `${at}[${i}]`, errors));
      } else {
        this.checkField(typeName, f, v, at, errors);
      }
    }
  }

  private checkMap(scope: string, entryName: string, entry: MessageDescriptor, v: unknown, at: string, errors: string[]): void {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      errors.push(`${at}: expected a map object`);
      return;
    }
    const valueField = entry.field.find((x) => x.name === 'value');
    if (valueField === undefined) return;
    for (const [mk, mv] of Object.entries(v)) this.checkField(entryName || scope, valueField, mv, `${at}[${JSON.stringify(mk)}]`, errors);
  }

  private checkAny(value: unknown, path: string, errors: string[]): void {
    const at = path || '<root>';
    if (typeof value !== 'object' || value === null) {
      errors.push(`${at}: expected an Any object`);
      return;
    }
    const typeUrl = (value as Record<string, unknown>)['@type'];
    if (typeof typeUrl !== 'string' || !typeUrl.startsWith(TYPE_PREFIX)) {
      errors.push(`${at}: an Any needs '@type': '${TYPE_PREFIX}...'`);
      return;
    }
    const { ['@type']: _omit, ...rest } = value as Record<string, unknown>;
    this.checkMessage(typeUrl.slice(TYPE_PREFIX.length), rest, path, errors);
  }

  private checkField(scope: string, f: FieldDescriptor, v: unknown, at: string, errors: string[]): void {
    switch (f.type) {
      case 'TYPE_MESSAGE': {
        const name = this.resolve(scope, f.typeName);
        if (name === undefined) errors.push(`${at}: type ${f.typeName} is not loaded`);
        else this.checkMessage(name, v, at, errors);
        return;
      }
      case 'TYPE_ENUM': {
        const name = this.resolve(scope, f.typeName);
        const e = name === undefined ? undefined : this.enumOf(name);
        if (e === undefined) errors.push(`${at}: enum ${f.typeName} is not loaded`);
        else if (!e.value.some((x) => x.name === v || x.number === v)) errors.push(`${at}: ${JSON.stringify(v)} is not a value of ${name}`);
        return;
      }
      case 'TYPE_STRING':
        if (typeof v !== 'string') errors.push(`${at}: expected a string`);
        return;
      case 'TYPE_BOOL':
        if (typeof v !== 'boolean') errors.push(`${at}: expected a boolean`);
        return;
      case 'TYPE_DOUBLE':
      case 'TYPE_FLOAT':
        if (typeof v !== 'number') errors.push(`${at}: expected a number`);
        return;
      case 'TYPE_BYTES':
        if (typeof v !== 'string' && !(v instanceof Uint8Array)) errors.push(`${at}: expected bytes`);
        return;
      default:
        if (INT_TYPES.has(f.type)) {
          if (typeof v !== 'number' || !Number.isInteger(v)) errors.push(`${at}: expected an integer`);
          else if (UNSIGNED.has(f.type) && v < 0) errors.push(`${at}: must not be negative`);
        } else if (LONG_TYPES.has(f.type)) {
          const ok = (typeof v === 'number' && Number.isInteger(v)) || (typeof v === 'string' && /^-?\d+$/.test(v));
          if (!ok) errors.push(`${at}: expected an integer`);
        } else {
          errors.push(`${at}: unsupported field type ${f.type}`);
        }
    }
  }
}

let shared: ProtoChecker | undefined;

/** Problems in an xDS resource (empty when it is valid Envoy v3 as far as field shapes go). */
export function checkXdsResource(typeUrl: string, resource: unknown): string[] {
  shared ??= new ProtoChecker();
  return shared.checkResource(typeUrl, resource);
}
