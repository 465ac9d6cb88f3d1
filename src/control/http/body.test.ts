import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { isWeftError } from '../../lib/errors.js';
import { bodyFormat, parseBody, readBody } from './body.js';

function fakeRequest(chunks: string[], headers: Record<string, string> = {}): IncomingMessage {
  const s = new PassThrough();
  Object.assign(s, { headers });
  for (const c of chunks) s.write(c);
  s.end();
  return s as unknown as IncomingMessage;
}

test('reads a body within the limit', async () => {
  assert.equal(await readBody(fakeRequest(['ab', 'cd']), 4), 'abcd');
});

test('refuses a body over the limit: declared, or counted while reading', async () => {
  await assert.rejects(readBody(fakeRequest([], { 'content-length': '5' }), 4), (e) => isWeftError(e, 'WEFT_ERR_TOO_LARGE'));
  await assert.rejects(readBody(fakeRequest(['abc', 'de']), 4), (e) => isWeftError(e, 'WEFT_ERR_TOO_LARGE'));
});

test('a client that goes away mid-body is a 400, not a hang', async () => {
  const s = new PassThrough();
  Object.assign(s, { headers: {} });
  s.write('abc');
  const p = readBody(s as unknown as IncomingMessage, 100);
  s.destroy();
  await assert.rejects(p, (e) => isWeftError(e, 'WEFT_ERR_BAD_REQUEST'));
});

test('Content-Type picks the parser', () => {
  assert.equal(bodyFormat(undefined), 'yaml');
  assert.equal(bodyFormat('application/json; charset=utf-8'), 'json');
  assert.equal(bodyFormat('application/merge-patch+json'), 'json');
  assert.equal(bodyFormat('application/yaml'), 'yaml');
  assert.equal(bodyFormat('text/yaml'), 'yaml');
  assert.throws(() => bodyFormat('text/plain'), (e) => isWeftError(e, 'WEFT_ERR_BAD_REQUEST'));
  assert.throws(() => bodyFormat('multipart/form-data; boundary=x'), (e) => isWeftError(e, 'WEFT_ERR_BAD_REQUEST'));
});

test('JSON: one object, or a List expanded into items', () => {
  assert.deepEqual(parseBody('{"kind":"Service"}', 'json').docs, [{ source: 'request', document: 1, pathPrefix: '', value: { kind: 'Service' } }]);
  const list = parseBody('{"kind":"List","items":[{"a":1},{"b":2}]}', 'json');
  assert.deepEqual(list.docs.map((d) => d.pathPrefix), ['items[0]', 'items[1]']);
  const bad = parseBody('{"kind":', 'json');
  assert.equal(bad.docs.length, 0);
  assert.equal(bad.errors[0]?.source, 'request');
  assert.match(bad.errors[0]?.message ?? '', /^invalid JSON/);
});

test('YAML: many documents, numbered', () => {
  const r = parseBody('a: 1\n---\nb: 2\n', 'yaml');
  assert.deepEqual(r.docs.map((d) => d.document), [1, 2]);
});
