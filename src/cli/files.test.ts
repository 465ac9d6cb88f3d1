import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isWeftError } from '../lib/errors.js';
import { loadDocuments, readInputs } from './files.js';

let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-cli-files-'));
  await writeFile(join(dir, 'b.yaml'), 'kind: B\n---\nkind: B2\n');
  await writeFile(join(dir, 'a.json'), '{"kind":"A"}');
  await writeFile(join(dir, 'c.yml'), 'kind: C\n');
  await writeFile(join(dir, 'README.md'), '# not config\n');
  await mkdir(join(dir, 'sub'));
  await writeFile(join(dir, 'sub', 'd.yaml'), 'kind: D\n');
  await mkdir(join(dir, 'empty'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('a directory yields its .yaml, .yml and .json files in name order, not subdirectories', async () => {
  const files = await readInputs([dir]);
  assert.deepEqual(files.map((f) => f.source), [join(dir, 'a.json'), join(dir, 'b.yaml'), join(dir, 'c.yml')]);
});

test('-R descends into subdirectories', async () => {
  const files = await readInputs([dir], { recursive: true });
  assert.deepEqual(files.map((f) => f.source), [join(dir, 'a.json'), join(dir, 'b.yaml'), join(dir, 'c.yml'), join(dir, 'sub', 'd.yaml')]);
});

test('a file is read whatever its extension; "-" reads stdin once', async () => {
  const files = await readInputs([join(dir, 'README.md'), '-'], { readStdin: async () => 'kind: S\n' });
  assert.deepEqual(files.map((f) => f.source), [join(dir, 'README.md'), '-']);
  await assert.rejects(readInputs(['-', '-'], { readStdin: async () => '' }), (e) => isWeftError(e, 'WEFT_ERR_USAGE'));
});

test('missing paths and directories without config files are clear errors', async () => {
  await assert.rejects(readInputs([join(dir, 'nope.yaml')]), /cannot read .*nope\.yaml: no such file or directory/);
  await assert.rejects(readInputs([join(dir, 'empty')]), /no \*\.yaml, \*\.yml, \*\.json files/);
  await assert.rejects(readInputs([]), (e) => isWeftError(e, 'WEFT_ERR_USAGE'));
});

test('loadDocuments keeps each document\'s file and index', async () => {
  const { docs, errors } = await loadDocuments([join(dir, 'b.yaml')]);
  assert.deepEqual(errors, []);
  assert.deepEqual(docs.map((d) => [d.source, d.document]), [[join(dir, 'b.yaml'), 1], [join(dir, 'b.yaml'), 2]]);
});
