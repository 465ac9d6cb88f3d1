import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeObject, encodeObject } from './codec.js';
import { matchesFilter, normalizePrefix, objectKey, parseObjectKey, prefixEnd, rangePrefix } from './keys.js';

test('object keys: <prefix>resources/<Kind>/<namespace|_cluster>/<name>, and back', () => {
  const p = '/weft/';
  assert.equal(objectKey(p, { kind: 'Service', namespace: 'default', name: 'a' }), '/weft/resources/Service/default/a');
  assert.equal(objectKey(p, { kind: 'Mesh', namespace: '', name: 'default' }), '/weft/resources/Mesh/_cluster/default');
  assert.deepEqual(parseObjectKey(p, '/weft/resources/Mesh/_cluster/default'), { kind: 'Mesh', namespace: '', name: 'default' });
  assert.deepEqual(parseObjectKey(p, '/weft/resources/Service/prod/x'), { kind: 'Service', namespace: 'prod', name: 'x' });
  for (const k of ['/weft/other', '/weft/resources/Service/prod', '/weft/resources/Service/prod/x/y', '/weft/resources/Service//x', '/weftx/resources/A/b/c']) {
    assert.equal(parseObjectKey(p, k), undefined, k);
  }
});

test('keys that could escape their place are refused', () => {
  for (const k of [
    { kind: 'Service', namespace: 'default', name: 'a/b' },
    { kind: 'Service', namespace: '../x', name: 'a' },
    { kind: 'Service', namespace: '_cluster', name: 'a' },
    { kind: 'Service', namespace: 'default', name: '' },
  ]) {
    assert.throws(() => objectKey('/weft/', k), { code: 'WEFT_ERR_INVALID' }, JSON.stringify(k));
  }
  assert.throws(() => rangePrefix('/weft/', { kind: 'A/B' }), { code: 'WEFT_ERR_INVALID' });
});

test('prefix normalisation and ranges', () => {
  assert.equal(normalizePrefix(undefined), '/weft/');
  assert.equal(normalizePrefix('/a'), '/a/');
  assert.throws(() => normalizePrefix(''), { code: 'WEFT_ERR_USAGE' });
  assert.equal(rangePrefix('/w/'), '/w/resources/');
  assert.equal(rangePrefix('/w/', { namespace: 'prod' }), '/w/resources/', 'a namespace alone spans kinds');
  assert.equal(rangePrefix('/w/', { kind: 'Service', namespace: '' }), '/w/resources/Service/');
  assert.equal(rangePrefix('/w/', { kind: 'Service', namespace: 'prod' }), '/w/resources/Service/prod/');
  assert.equal(prefixEnd('/w/').toString(), '/w0');
  assert.equal(prefixEnd('/é/').toString(), '/é0');
  assert.ok(matchesFilter({ kind: 'A', namespace: '', name: 'x' }, { namespace: '' }));
  assert.ok(!matchesFilter({ kind: 'A', namespace: '', name: 'x' }, { namespace: 'prod' }));
});

test('values: JSON without resourceVersion; decoding stamps the revision and checks identity', () => {
  const o = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'a', namespace: 'default', resourceVersion: '7', uid: 'u' }, spec: { p: 1 } };
  const bytes = encodeObject(o);
  assert.equal((JSON.parse(bytes.toString()) as typeof o).metadata.resourceVersion, undefined);
  const d = decodeObject({ kind: 'Service', namespace: 'default', name: 'a' }, bytes, '42');
  assert.ok(d.ok);
  assert.deepEqual(d.object, { ...o, metadata: { ...o.metadata, resourceVersion: '42' } });
  assert.equal(decodeObject({ kind: 'Service', namespace: 'prod', name: 'a' }, bytes, '42').ok, false);
  assert.equal(decodeObject({ kind: 'Service', namespace: 'default', name: 'a' }, Buffer.from('nope'), '1').ok, false);
  assert.equal(decodeObject({ kind: 'Service', namespace: 'default', name: 'a' }, Buffer.from('[1]'), '1').ok, false);
});
