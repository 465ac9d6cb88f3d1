import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FieldError } from '../lib/errors.js';
import type { KindDescriptor, ValidationContext } from './descriptor.js';
import { apiVersionOf } from './descriptor.js';
import { isObject, type SourceDocument } from './parse.js';
import { kinds as defaultRegistry, type KindRegistry } from './registry.js';
import { resourceSchema } from './resource-schema.js';
import { DEFAULT_NAMESPACE, keyString, type Resource, type ResourceKey } from './types.js';

// ajv-formats is CommonJS with a default export; under NodeNext it arrives wrapped.
const addFormats = addFormatsModule.default;

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false });
addFormats(ajv);
const compiled = new Map<string, ValidateFunction>();

function validatorFor(d: KindDescriptor): ValidateFunction {
  let v = compiled.get(d.kind);
  if (!v) {
    v = ajv.compile(resourceSchema(d));
    compiled.set(d.kind, v);
  }
  return v;
}

export interface ValidateOptions {
  registry?: KindRegistry;
  /** Namespace for namespaced objects that name none. */
  defaultNamespace?: string;
  /**
   * Whether a key exists outside this input (in the store). References are
   * checked against it and the input itself. Omit to skip reference checks.
   */
  exists?: (key: ResourceKey) => boolean;
}

export interface ValidationResult {
  /** Valid objects with defaults applied and apiVersion normalised; empty when any error. */
  resources: Resource[];
  errors: FieldError[];
}

/** `/spec/rules/0/matches` → `spec.rules[0].matches` */
export function jsonPointerToPath(pointer: string): string {
  if (pointer === '') return '';
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, seg) => (/^\d+$/.test(seg) ? `${acc}[${seg}]` : acc === '' ? seg : `${acc}.${seg}`), '');
}

export function joinPath(a: string, b: string): string {
  if (a === '') return b;
  if (b === '') return a;
  return b.startsWith('[') ? a + b : `${a}.${b}`;
}

function describeAjvError(e: ErrorObject): { path: string; message: string } {
  const base = jsonPointerToPath(e.instancePath);
  switch (e.keyword) {
    case 'required':
      return { path: joinPath(base, String((e.params as { missingProperty: string }).missingProperty)), message: 'is required' };
    case 'additionalProperties':
      return { path: joinPath(base, String((e.params as { additionalProperty: string }).additionalProperty)), message: 'unknown field' };
    case 'enum':
      return { path: base, message: `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}` };
    case 'const':
      return { path: base, message: `must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}` };
    case 'pattern':
      return { path: base, message: `must match ${(e.params as { pattern: string }).pattern}` };
    case 'minimum':
      return { path: base, message: `must be ≥ ${(e.params as { limit: number }).limit}` };
    case 'maximum':
      return { path: base, message: `must be ≤ ${(e.params as { limit: number }).limit}` };
    default:
      return { path: base, message: e.message ?? e.keyword };
  }
}

/**
 * Reduces ajv's output to what a person needs: for a failed anyOf/oneOf (a union)
 * the branch errors are noise, so only the union's own error is kept unless just
 * one branch was plausible.
 */
function schemaErrors(errors: readonly ErrorObject[]): { path: string; message: string }[] {
  const unionPaths = new Set(errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf').map((e) => e.instancePath));
  const out: { path: string; message: string }[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (e.keyword !== 'anyOf' && e.keyword !== 'oneOf' && [...unionPaths].some((p) => e.instancePath === p || e.instancePath.startsWith(`${p}/`))) continue;
    const d = e.keyword === 'anyOf' || e.keyword === 'oneOf' ? { path: jsonPointerToPath(e.instancePath), message: 'does not match any allowed form' } : describeAjvError(e);
    const k = `${d.path}\u0000${d.message}`;
    if (!seen.has(k)) {
      seen.add(k);
      out.push(d);
    }
  }
  return out;
}

/**
 * The one validation boundary (CLI, HTTP API, store load): schema, defaults,
 * semantic checks, duplicates within the input, then references. All errors of
 * all documents are returned at once; on any error `resources` is empty.
 */
export function validateDocuments(docs: readonly SourceDocument[], opts: ValidateOptions = {}): ValidationResult {
  const registry = opts.registry ?? defaultRegistry;
  const errors: FieldError[] = [];
  const accepted: { doc: SourceDocument; d: KindDescriptor; r: Resource }[] = [];

  // Keys of every document that names a kind and a name, valid or not: a reference
  // to an object that is in the input but invalid is reported at that object, not
  // a second time as "does not exist" at the referrer.
  const named = new Set<string>();
  for (const doc of docs) {
    const v = doc.value;
    if (!isObject(v) || typeof v.kind !== 'string' || !isObject(v.metadata) || typeof v.metadata.name !== 'string') continue;
    const d = registry.byKindName(v.kind);
    const ns = d?.namespaced === false ? '' : typeof v.metadata.namespace === 'string' ? v.metadata.namespace : (opts.defaultNamespace ?? DEFAULT_NAMESPACE);
    named.add(keyString({ kind: v.kind, namespace: ns, name: v.metadata.name }));
  }

  for (const doc of docs) {
    const err = (path: string, message: string) => errors.push({ source: doc.source, document: doc.document, path: joinPath(doc.pathPrefix, path), message });
    const v = doc.value;
    if (!isObject(v)) {
      err('', 'a resource must be a mapping with apiVersion, kind, metadata and spec');
      continue;
    }
    if (typeof v.kind !== 'string' || v.kind === '') {
      err('kind', 'is required');
      continue;
    }
    const d = registry.byKindName(v.kind);
    if (!d) {
      err('kind', `unknown kind "${v.kind}" (known: ${registry.kinds.map((k) => k.kind).join(', ')})`);
      continue;
    }
    const r = structuredClone(v) as unknown as Resource;
    if (isObject(r.metadata) && d.namespaced && r.metadata.namespace === undefined) r.metadata.namespace = opts.defaultNamespace ?? DEFAULT_NAMESPACE;
    const validate = validatorFor(d);
    if (!validate(r)) {
      for (const e of schemaErrors(validate.errors ?? [])) err(e.path, e.message);
      continue;
    }
    if (!d.namespaced && r.metadata.namespace !== undefined) {
      err('metadata.namespace', `${d.kind} is cluster-scoped: remove the namespace`);
      continue;
    }
    r.apiVersion = apiVersionOf(d);
    delete r.status;
    d.applyDefaults?.(r);
    const before = errors.length;
    const ctx: ValidationContext = { error: err };
    d.validate?.(r, ctx);
    if (errors.length === before) accepted.push({ doc, d, r });
  }

  // Duplicates within one input are almost always a copy-paste slip.
  const inInput = new Map<string, SourceDocument>();
  for (const { doc, r } of accepted) {
    const k = keyString({ kind: r.kind, namespace: r.metadata.namespace ?? '', name: r.metadata.name });
    const first = inInput.get(k);
    if (first) {
      errors.push({ source: doc.source, document: doc.document, path: joinPath(doc.pathPrefix, 'metadata.name'), message: `duplicate ${k} (also in ${first.source}#${first.document})` });
    } else {
      inInput.set(k, doc);
    }
  }

  if (opts.exists) {
    const exists = opts.exists;
    for (const { doc, d, r } of accepted) {
      for (const ref of d.references?.(r) ?? []) {
        if (named.has(keyString(ref.target)) || exists(ref.target)) continue;
        errors.push({
          source: doc.source,
          document: doc.document,
          path: joinPath(doc.pathPrefix, ref.path),
          message: `refers to ${keyString(ref.target)}, which does not exist`,
        });
      }
    }
  }

  return errors.length > 0 ? { resources: [], errors } : { resources: accepted.map((a) => a.r), errors: [] };
}
