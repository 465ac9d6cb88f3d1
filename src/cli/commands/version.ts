import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';

let cached: string | undefined;

/**
 * The package's version, read at run time from the nearest package.json named
 * `weft` above this file (dist/src/cli/commands/ when built), so a build never
 * carries a stale copy.
 */
export function packageVersion(): string {
  if (cached !== undefined) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'weft' && typeof pkg.version === 'string') return (cached = pkg.version);
    } catch {
      // not here: keep climbing
    }
    const up = dirname(dir);
    if (up === dir) return (cached = 'unknown');
    dir = up;
  }
}

export function versionLine(): string {
  return `weft ${packageVersion()} (node ${process.version})`;
}

export function registerVersion(program: Command): void {
  program
    .command('version')
    .description('print the version of weft and of Node.js')
    .action(() => {
      process.stdout.write(`${versionLine()}\n`);
    });
}
