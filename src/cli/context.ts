import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ADMIN_TOKEN_FILE } from '../control/admin-token.js';
import { ApiClient, type TokenSource } from './client.js';

/** Options every command accepts (declared on the root program). */
export interface GlobalOptions {
  server?: string;
  token?: string;
  dataDir?: string;
  verbose?: boolean;
}

export const DEFAULT_SERVER = 'http://127.0.0.1:15020';

export function globalOptions(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals<GlobalOptions>();
}

/** `--data-dir`, else WEFT_DATA_DIR, else undefined (clients) — `weft control` falls back to ~/.weft. */
export function dataDirOf(g: GlobalOptions, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (g.dataDir !== undefined && g.dataDir !== '') return g.dataDir;
  const e = env.WEFT_DATA_DIR;
  return e !== undefined && e !== '' ? e : undefined;
}

export function defaultDataDir(): string {
  return join(homedir(), '.weft');
}

/** `--server`, else WEFT_SERVER, else the default; a trailing `/` is dropped. */
export function serverOf(g: GlobalOptions, env: NodeJS.ProcessEnv = process.env): string {
  const s = g.server ?? (env.WEFT_SERVER !== undefined && env.WEFT_SERVER !== '' ? env.WEFT_SERVER : DEFAULT_SERVER);
  return s.replace(/\/+$/, '');
}

/** `--token`, else WEFT_TOKEN, else DIR/admin-token when a data directory is named. */
export function tokenOf(g: GlobalOptions, env: NodeJS.ProcessEnv = process.env): TokenSource {
  if (g.token !== undefined && g.token !== '') return { token: g.token, origin: '--token' };
  if (env.WEFT_TOKEN !== undefined && env.WEFT_TOKEN !== '') return { token: env.WEFT_TOKEN, origin: 'WEFT_TOKEN' };
  const dir = dataDirOf(g, env);
  if (dir === undefined) return {};
  const path = join(dir, ADMIN_TOKEN_FILE);
  try {
    const token = readFileSync(path, 'utf8').trim();
    if (token !== '') return { token, origin: path };
    return { problem: `${path} is empty` };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { problem: code === 'ENOENT' ? `${path} does not exist` : `cannot read ${path} (${code ?? String(e)})` };
  }
}

/** The control-plane client a command uses, from the global options. */
export function clientFor(cmd: Command): ApiClient {
  const g = globalOptions(cmd);
  return new ApiClient({ server: serverOf(g), token: tokenOf(g) });
}
