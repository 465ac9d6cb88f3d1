import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { serviceKind } from '../api/service/service.js';
import type { KindDescriptor } from '../api/descriptor.js';
import type { Resource } from '../api/types.js';
import { ageOf, formatObjects, humanDuration, indent, plural, renderTable, tableOf } from './output.js';
import { formatDescribe } from './commands/describe.js';

const svc = serviceKind as KindDescriptor;
const NOW = Date.parse('2025-01-10T12:00:00Z');

function service(name: string, namespace: string, createdSecondsAgo: number | undefined, ports = [{ port: 80, protocol: 'http' }]): Resource {
  return {
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'Service',
    metadata: {
      name,
      namespace,
      ...(createdSecondsAgo === undefined ? {} : { creationTimestamp: new Date(NOW - createdSecondsAgo * 1000).toISOString() }),
    },
    spec: { ports, selector: { app: name } },
  };
}

test('humanDuration follows kubectl: seconds up to 2m, then m+s, m, h+m, h, d+h, d, y+d, y', () => {
  const s = 1000;
  const cases: [number, string][] = [
    [-5 * s, '<invalid>'],
    [-500, '0s'],
    [0, '0s'],
    [5 * s, '5s'],
    [119 * s, '119s'],
    [120 * s, '2m'],
    [185 * s, '3m5s'],
    [10 * 60 * s, '10m'],
    [179 * 60 * s, '179m'],
    [3 * 3600 * s, '3h'],
    [(3 * 3600 + 20 * 60) * s, '3h20m'],
    [8 * 3600 * s, '8h'],
    [47 * 3600 * s, '47h'],
    [48 * 3600 * s, '2d'],
    [(4 * 24 + 5) * 3600 * s, '4d5h'],
    [8 * 24 * 3600 * s, '8d'],
    [400 * 24 * 3600 * s, '400d'],
    [(3 * 365 + 10) * 24 * 3600 * s, '3y10d'],
    [9 * 365 * 24 * 3600 * s, '9y'],
  ];
  for (const [ms, want] of cases) assert.equal(humanDuration(ms), want, `${ms} ms`);
});

test('ageOf says <unknown> without a usable creationTimestamp', () => {
  assert.equal(ageOf(service('a', 'default', 42), NOW), '42s');
  assert.equal(ageOf(service('a', 'default', undefined), NOW), '<unknown>');
  const bad = service('a', 'default', undefined);
  bad.metadata.creationTimestamp = 'yesterday';
  assert.equal(ageOf(bad, NOW), '<unknown>');
});

test('renderTable pads columns three spaces apart and leaves no trailing blanks', () => {
  const out = renderTable(['NAME', 'PORTS', 'AGE'], [
    ['catalog', '80/http', '5s'],
    ['a', '', '3m'],
  ]);
  assert.equal(out, ['NAME      PORTS     AGE', 'catalog   80/http   5s', 'a                   3m', ''].join('\n'));
  for (const line of out.split('\n')) assert.equal(line, line.trimEnd());
});

test('tableOf: NAME, the kind columns, AGE; NAMESPACE first only with all namespaces', () => {
  const items = [service('catalog', 'default', 5), service('reviews', 'shop', 3 * 60 * 60)];
  const one = tableOf(svc, items, { now: NOW }).split('\n');
  assert.match(one[0]!, /^NAME\s+PORTS\s+SELECTOR\s+AGE$/);
  assert.match(one[1]!, /^catalog\s+80\/http\s+app=catalog\s+5s$/);
  const all = tableOf(svc, items, { now: NOW, allNamespaces: true }).split('\n');
  assert.match(all[0]!, /^NAMESPACE\s+NAME\s+PORTS\s+SELECTOR\s+AGE$/);
  assert.match(all[2]!, /^shop\s+reviews\s+80\/http\s+app=reviews\s+3h$/);
  const qualified = tableOf(svc, items, { now: NOW, qualifyNames: true });
  assert.match(qualified, /^service\/catalog /m);
});

test('a column that throws on a malformed stored object prints <invalid> instead of failing the listing', () => {
  const broken = service('old', 'default', 1);
  (broken.spec as { ports?: unknown }).ports = undefined;
  const out = tableOf(svc, [broken], { now: NOW });
  assert.match(out, /^old\s+<invalid>/m);
});

test('-o yaml and -o json: a List for many, the object itself for one', () => {
  const items = [service('a', 'default', 1), service('b', 'default', 1)];
  const list = parse(formatObjects(svc, items, 'yaml')) as { kind: string; apiVersion: string; items: Resource[] };
  assert.equal(list.kind, 'List');
  assert.equal(list.apiVersion, 'v1');
  assert.deepEqual(list.items.map((i) => i.metadata.name), ['a', 'b']);
  const one = parse(formatObjects(svc, [items[0]!], 'yaml', { single: true })) as Resource;
  assert.equal(one.kind, 'Service');
  const json = JSON.parse(formatObjects(svc, [items[0]!], 'json', { single: true })) as Resource;
  assert.equal(json.metadata.name, 'a');
  const emptyList = JSON.parse(formatObjects(svc, [], 'json')) as { items: unknown[] };
  assert.deepEqual(emptyList.items, []);
  assert.equal(formatObjects(svc, items, 'name'), 'service/a\nservice/b\n');
});

test('long strings are not folded in YAML output (they must round-trip through apply)', () => {
  const r = service('a', 'default', 1);
  r.metadata.annotations = { note: 'x '.repeat(100).trim() };
  const back = parse(formatObjects(svc, [r], 'yaml', { single: true })) as Resource;
  assert.equal(back.metadata.annotations?.note, r.metadata.annotations.note);
});

test('formatDescribe: aligned fields, labels one per line, spec as YAML, status <none>', () => {
  const r = service('catalog', 'default', 120);
  r.metadata.labels = { tier: 'back', app: 'catalog' };
  r.metadata.generation = 2;
  r.metadata.resourceVersion = '17';
  const out = formatDescribe(svc, r, NOW);
  const lines = out.split('\n');
  assert.match(lines[0]!, /^Name:\s+catalog$/);
  assert.match(out, /^Namespace:\s+default$/m);
  assert.match(out, /^Labels:\s+app=catalog\n\s+tier=back$/m);
  assert.match(out, /^Created:\s+\S+ \(2m ago\)$/m);
  assert.match(out, /^Generation:\s+2$/m);
  assert.match(out, /^Ports:\s+80\/http$/m);
  assert.match(out, /^Spec:\n {2}ports:\n/m);
  assert.match(out, /^Status:\s+<none>$/m);
  // Values start in one column.
  const col = (l: string) => l.search(/(?<=:\s+)\S/);
  assert.equal(col(lines[0]!), col(lines.find((l) => l.startsWith('Resource Version:'))!));
});

test('plural and indent', () => {
  assert.equal(plural(1, 'error'), '1 error');
  assert.equal(plural(3, 'file'), '3 files');
  assert.equal(indent('a:\n  b: 1\n\nc: 2\n'), '  a:\n    b: 1\n\n  c: 2');
});
