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

/** Plain JSON (TypeBox adds symbol keys that JSON.stringify drops anyway). */
export function jsonSchemaOf(d: KindDescriptor): object {
  return { $schema: 'http://json-schema.org/draft-07/schema#', ...(JSON.parse(JSON.stringify(resourceSchema(d))) as object) };
}
