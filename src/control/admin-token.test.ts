import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isWeftError } from '../lib/errors.js';
import { loadOrCreateAdminToken } from './admin-token.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'weft-token-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('creates 32 random bytes as base64url, mode 0600, and reuses them', () =>
  withDir(async (dir) => {
    const a = await loadOrCreateAdminToken(dir);
    assert.match(a, /^[A-Za-z0-9_-]{43}$/);
    assert.equal((await stat(join(dir, 'admin-token'))).mode & 0o777, 0o600);
    assert.equal(await loadOrCreateAdminToken(dir), a);
  }));

test('two starts at once agree on one token', () =>
  withDir(async (dir) => {
    const [a, b] = await Promise.all([loadOrCreateAdminToken(dir), loadOrCreateAdminToken(dir)]);
    assert.equal(a, b);
  }));

test('an empty token file is refused, not silently replaced', () =>
  withDir(async (dir) => {
    await writeFile(join(dir, 'admin-token'), '\n', { mode: 0o600 });
    await assert.rejects(loadOrCreateAdminToken(dir), (e) => isWeftError(e, 'WEFT_ERR_STORE'));
  }));
