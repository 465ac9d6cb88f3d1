#!/usr/bin/env node
// Runs the compiled tests (dist/**/*.test.js) with node's own test runner.
// Node 20's runner takes no globs, so the files are listed here.
// Usage: node scripts/run-tests.mjs [src|test ...] [-- extra node --test flags]
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const argv = process.argv.slice(2);
const sep = argv.indexOf('--');
const roots = (sep === -1 ? argv : argv.slice(0, sep));
const extra = sep === -1 ? [] : argv.slice(sep + 1);
const dirs = (roots.length ? roots : ['src', 'test']).map((r) => join('dist', r));

function walk(dir, out) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const files = dirs.flatMap((d) => walk(d, [])).sort();
if (files.length === 0) {
  console.error(`no test files under ${dirs.join(', ')}: run "npm run build" first`);
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=120000', ...extra, ...files], {
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
