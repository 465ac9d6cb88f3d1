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
// End-to-end files run whole meshes under load (30-60 s of traffic, kill scenarios):
// two at once on a 2-core machine starve each other's timers, so they run one at a
// time after the rest. Unit and integration files run two at a time.
const isE2e = (f) => f.split(/[\\/]/).includes('e2e');
const batches = [
  { files: files.filter((f) => !isE2e(f)), concurrency: 2 },
  { files: files.filter(isE2e), concurrency: 1 },
].filter((b) => b.files.length > 0);
let status = 0;
for (const b of batches) {
  const r = spawnSync(process.execPath, ['--test', `--test-concurrency=${b.concurrency}`, '--test-timeout=180000', ...extra, ...b.files], {
    stdio: 'inherit',
  });
  if (r.status !== 0) status = r.status ?? 1;
}
process.exit(status);
