import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { envoyPackageDefinition } from '../../xds/protos.js';
import { encodeEntry, encodeResource } from './encode-cache.js';
import { contentHash } from './snapshot.js';
import type { XdsResource } from './snapshot.js';

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}
const TESTDATA = join(repoRoot(), 'src/control/xds/testdata');

type Serialize = (v: object) => Buffer;
type Deserialize = (b: Buffer) => Record<string, unknown>;
const response = envoyPackageDefinition()['envoy.service.discovery.v3.DiscoveryResponse'] as unknown as { serialize: Serialize; deserialize: Deserialize };

for (const file of ['mesh-default', 'mesh-shop', 'policy-proxy', 'policy-grpc']) {
  test(`pre-encoded resources give the same DiscoveryResponse bytes as JSON ones (${file})`, () => {
    const byType = JSON.parse(readFileSync(join(TESTDATA, `${file}.golden.json`), 'utf8')) as Record<string, XdsResource[]>;
    let checked = 0;
    for (const [type, resources] of Object.entries(byType)) {
      if (resources.length === 0) continue;
      const base = { version_info: 'v1', type_url: type, nonce: '1-1' };
      const json = response.serialize({ ...base, resources });
      const pre = response.serialize({ ...base, resources: resources.map((r) => encodeResource(r, type)) });
      assert.ok(json.length > 0);
      assert.deepEqual(pre, json, `${type}: bytes differ`);
      // And it reads back as the same JSON form.
      assert.deepEqual(response.deserialize(pre).resources, response.deserialize(json).resources);
      checked++;
    }
    assert.ok(checked > 0, 'golden file had resources');
  });
}

test('a resource object is encoded once', () => {
  const byType = JSON.parse(readFileSync(join(TESTDATA, 'mesh-default.golden.json'), 'utf8')) as Record<string, XdsResource[]>;
  const [type, resources] = Object.entries(byType)[0]!;
  const r = resources[0]!;
  const a = encodeResource(r, type);
  assert.equal(encodeResource(r, type), a);
  assert.equal((a as { type_url: string }).type_url, type);
  // A structurally equal but distinct object is encoded on its own (to the same bytes).
  const b = encodeResource(structuredClone(r), type);
  assert.notEqual(b, a);
  assert.deepEqual(b, a);
});

test('a resource of a type that is not loaded is passed through unchanged', () => {
  const r = { '@type': 'type.googleapis.com/not.a.Type', name: 'x' };
  assert.equal(encodeResource(r, 'type.googleapis.com/not.a.Type'), r);
});

test('an entry whose content is unchanged reuses the earlier encoding', () => {
  const byType = JSON.parse(readFileSync(join(TESTDATA, 'mesh-default.golden.json'), 'utf8')) as Record<string, XdsResource[]>;
  const [type, resources] = Object.entries(byType)[0]!;
  const r = resources[0]!;
  const a = encodeEntry({ name: String(r.name), resource: r, hash: contentHash(r) }, type);
  const copy = structuredClone(r);
  assert.equal(encodeEntry({ name: String(r.name), resource: copy, hash: contentHash(copy) }, type), a);
  const changed = { ...r, name: 'other' };
  const c = encodeEntry({ name: 'other', resource: changed, hash: contentHash(changed) }, type);
  assert.notEqual(c, a);
  assert.deepEqual(c, encodeResource(structuredClone(changed), type));
});
