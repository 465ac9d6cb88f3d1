import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { parseAllDocuments } from 'yaml';
import { kinds } from './registry.js';
import { jsonSchemaOf } from './resource-schema.js';
import { apiVersionOf } from './descriptor.js';
import { parseDocuments, type SourceDocument } from './parse.js';
import { validateDocuments } from './validate.js';
import { formatFieldError } from '../lib/errors.js';

const addFormats = addFormatsModule.default;

// dist/src/api/all.test.js → the repository's examples/
const examplesDir = new URL('../../../examples/', import.meta.url);
const exampleFiles = readdirSync(examplesDir).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml')).sort();

function exampleObjects(): { file: string; index: number; value: { kind?: string } }[] {
  return exampleFiles.flatMap((file) =>
    parseAllDocuments(readFileSync(new URL(file, examplesDir), 'utf8'))
      .flatMap((d) => (Array.isArray(d) ? d : [d]))
      .map((d, index) => ({ file, index: index + 1, value: d.toJS() as { kind?: string } }))
      .filter((o) => o.value !== null && o.value !== undefined),
  );
}

test('examples/ has the demo files', () => {
  for (const f of ['mesh.yaml', 'services.yaml', 'routes.yaml', 'policies.yaml']) assert.ok(exampleFiles.includes(f), f);
});

test('every kind has a descriptor that is complete and unique', () => {
  const names = new Set<string>();
  for (const d of kinds.kinds) {
    assert.ok(d.description.length > 20, d.kind);
    assert.ok(d.columns.length > 0, d.kind);
    for (const n of new Set([d.kind.toLowerCase(), d.plural, d.singular, ...d.shortNames])) {
      assert.ok(!names.has(n), `${n} is used twice`);
      names.add(n);
    }
    assert.equal(kinds.lookup(d.plural), d);
    assert.equal(kinds.byPath(d.group, d.versions[0] ?? '', d.plural), d);
  }
  assert.deepEqual(kinds.kinds.map((d) => d.kind).sort(), ['BackendPolicy', 'GRPCRoute', 'HTTPRoute', 'Mesh', 'SecurityPolicy', 'Service', 'TCPRoute', 'Workload']);
});

for (const d of kinds.kinds) {
  test(`${d.kind}: the published JSON Schema compiles with a fresh Ajv and accepts the examples`, () => {
    // No useDefaults: the published schema must accept objects that leave defaulted fields out.
    const ajv = new Ajv({ allErrors: true, strict: false });
    addFormats(ajv);
    const validate = ajv.compile(jsonSchemaOf(d));
    const mine = exampleObjects().filter((o) => o.value.kind === d.kind);
    for (const o of mine) {
      const ok = validate(structuredClone(o.value));
      assert.ok(ok, `${o.file}#${o.index}: ${ajv.errorsText(validate.errors)}`);
    }
    assert.equal(validate({ apiVersion: apiVersionOf(d), kind: d.kind, metadata: { name: 'x' }, spec: { unknownField: 1 } }), false);
  });
}

test('every kind is shown by at least one example', () => {
  const shown = new Set(exampleObjects().map((o) => o.value.kind));
  for (const k of ['Mesh', 'Service', 'HTTPRoute', 'GRPCRoute', 'TCPRoute', 'BackendPolicy', 'SecurityPolicy']) assert.ok(shown.has(k), k);
});

test('the examples validate together and every reference resolves within examples/', () => {
  const docs: SourceDocument[] = [];
  for (const file of exampleFiles) {
    const p = parseDocuments(readFileSync(new URL(file, examplesDir), 'utf8'), file);
    assert.deepEqual(p.errors, []);
    docs.push(...p.docs);
  }
  const r = validateDocuments(docs, { exists: () => false });
  assert.deepEqual(r.errors.map(formatFieldError), []);
  assert.equal(r.resources.length, docs.length);
});

test('columns render for every example object', () => {
  const docs = exampleFiles.flatMap((file) => parseDocuments(readFileSync(new URL(file, examplesDir), 'utf8'), file).docs);
  for (const res of validateDocuments(docs, {}).resources) {
    const d = kinds.byKindName(res.kind);
    assert.ok(d);
    for (const c of d.columns) assert.equal(typeof c.value(res), 'string', `${res.kind} ${c.header}`);
  }
});
