import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SourceDocument } from '../../api/parse.js';
import { formatApplyResult, sortByInput, toUserSource } from './apply.js';

const docs: SourceDocument[] = [
  { source: 'svc.yaml', document: 1, pathPrefix: '', value: {} },
  { source: 'list.yaml', document: 2, pathPrefix: 'items[4]', value: {} },
];

test('server errors about the sent List are mapped back to the user\'s file, document and path', () => {
  assert.deepEqual(toUserSource({ source: 'request', document: 1, path: 'items[0].spec.ports[0].port', message: 'm' }, docs), {
    source: 'svc.yaml',
    document: 1,
    path: 'spec.ports[0].port',
    message: 'm',
  });
  assert.deepEqual(toUserSource({ source: 'request', document: 1, path: 'items[1].spec', message: 'm' }, docs), {
    source: 'list.yaml',
    document: 2,
    path: 'items[4].spec',
    message: 'm',
  });
  assert.equal(toUserSource({ source: 'request', document: 1, path: 'items[0]', message: 'm' }, docs).path, '');
  // Not about an item (or out of range): left as the server said it.
  const other = { source: 'request', document: 1, path: 'items[9].spec', message: 'm' };
  assert.deepEqual(toUserSource(other, docs), other);
});

test('errors are ordered by input file as read, then document', () => {
  const sorted = sortByInput(
    [
      { source: 'b.yaml', document: 2, path: 'x', message: '1' },
      { source: 'a.yaml', document: 1, path: 'y', message: '2' },
      { source: 'b.yaml', document: 1, path: 'z', message: '3' },
    ],
    ['b.yaml', 'a.yaml'],
  );
  assert.deepEqual(sorted.map((e) => e.message), ['3', '1', '2']);
});

test('apply results print kubectl style, with (dry run) when dry', () => {
  const items = [
    { kind: 'Service', namespace: 'default', name: 'catalog', action: 'created' as const },
    { kind: 'HTTPRoute', namespace: 'default', name: 'r', action: 'unchanged' as const },
  ];
  assert.equal(formatApplyResult({ items, dryRun: false }), 'service/catalog created\nhttproute/r unchanged\n');
  assert.equal(formatApplyResult({ items, dryRun: true }), 'service/catalog created (dry run)\nhttproute/r unchanged (dry run)\n');
});
