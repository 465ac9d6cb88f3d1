/**
 * Support for the translation tests (not a test itself): golden files under
 * src/control/xds/testdata (tests run from dist/, the files stay in the source tree;
 * UPDATE_GOLDEN=1 rewrites them), fixture YAML read as valid Weft input, and the check
 * that a generated resource is valid Envoy v3 and survives the wire.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocuments } from '../../api/parse.js';
import type { Resource } from '../../api/types.js';
import { validateDocuments } from '../../api/validate.js';
import { checkXdsResource } from '../../xds/proto-check.js';
import { adsServices } from '../../xds/protos.js';

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

export const TESTDATA = join(repoRoot(), 'src/control/xds/testdata');

/** `actual` (as JSON) equals testdata/NAME.golden.json; a missing file is written and the test fails once. */
export function golden(name: string, actual: unknown): void {
  const path = join(TESTDATA, `${name}.golden.json`);
  const text = `${JSON.stringify(actual, null, 2)}\n`;
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(path)) {
    writeFileSync(path, text);
    if (process.env.UPDATE_GOLDEN !== '1') assert.fail(`${path} did not exist; written. Review it and run again.`);
    return;
  }
  assert.deepEqual(JSON.parse(text), JSON.parse(readFileSync(path, 'utf8')), `${name}: output differs from ${path} (UPDATE_GOLDEN=1 to accept)`);
}

/** YAML documents (inline text, or `file` under testdata/ when `text` is omitted) that must be valid Weft input; `by(kind)` picks them. */
export function fixture(file: string, text?: string): { resources: Resource[]; by: <S = unknown>(kind: string) => Resource<S>[] } {
  const parsed = parseDocuments(text ?? readFileSync(join(TESTDATA, file), 'utf8'), file);
  assert.deepEqual(parsed.errors, []);
  const { resources, errors } = validateDocuments(parsed.docs);
  assert.deepEqual(errors, [], 'the fixture must be valid Weft input');
  return { resources, by: <S>(kind: string) => resources.filter((r) => r.kind === kind) as Resource<S>[] };
}

/** Passes Envoy's proto checks, and one ADS response carrying it decodes back to it. */
export function assertValidEnvoy(typeUrl: string, resource: Record<string, unknown>): void {
  assert.deepEqual(checkXdsResource(typeUrl, resource), [], `${typeUrl} ${String(resource.name ?? resource.cluster_name)}`);
  const method = adsServices().ads.StreamAggregatedResources;
  if (!method) throw new Error('no ADS method');
  const bytes = method.responseSerialize({ version_info: '1', type_url: typeUrl, nonce: '1', resources: [resource] });
  const back = method.responseDeserialize(bytes) as { resources: Record<string, unknown>[] };
  assert.equal(back.resources.length, 1);
  assert.equal(back.resources[0]?.['@type'], typeUrl);
}
