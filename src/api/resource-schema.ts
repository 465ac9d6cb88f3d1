import { Type, type TSchema } from '@sinclair/typebox';
import type { KindDescriptor } from './descriptor.js';
import { ObjectMetaSchema } from './meta.js';

/** The JSON Schema of a whole object of one kind (what `weft schema KIND` prints). */
export function resourceSchema(d: KindDescriptor): TSchema {
  return Type.Object(
    {
      apiVersion: Type.Union(d.versions.map((v) => Type.Literal(`${d.group}/${v}`))),
      kind: Type.Literal(d.kind),
      metadata: ObjectMetaSchema,
      spec: d.specSchema,
      // status is written by Weft; accepted on input (round trips of `get -o yaml`) and ignored.
      status: Type.Optional(Type.Unknown()),
    },
    {
      additionalProperties: false,
      $id: `https://weft.dev/schemas/${d.group}/${d.kind}.json`,
      title: d.kind,
      description: d.description,
    },
  );
}

/**
 * Plain JSON (TypeBox adds symbol keys that JSON.stringify drops anyway).
 *
 * Fields with a `default` are required in the TypeBox schema, so that the spec
 * types say what code sees after validation (defaults filled). A user need not
 * write them, though, so the published schema lists them as optional.
 */
export function jsonSchemaOf(d: KindDescriptor): object {
  const schema = JSON.parse(JSON.stringify(resourceSchema(d))) as unknown;
  relaxDefaulted(schema);
  return { $schema: 'http://json-schema.org/draft-07/schema#', ...(schema as object) };
}

function relaxDefaulted(node: unknown): void {
  if (Array.isArray(node)) {
    for (const n of node) relaxDefaulted(n);
    return;
  }
  if (typeof node !== 'object' || node === null) return;
  const o = node as { properties?: Record<string, { default?: unknown }>; required?: string[] };
  if (o.properties && Array.isArray(o.required)) {
    const props = o.properties;
    o.required = o.required.filter((k) => props[k]?.default === undefined);
    if (o.required.length === 0) delete o.required;
  }
  for (const v of Object.values(node)) relaxDefaulted(v);
}
