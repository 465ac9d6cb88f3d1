import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { isWeftError } from '../../lib/errors.js';
import { createJoinToken, loadOrCreateJoinTokenSecret, verifyJoinToken } from './tokens.js';

const T0 = Date.parse('2030-01-01T00:00:00Z');

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'weft-ca-token-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const refused = (why: RegExp) => (e: unknown) => isWeftError(e, 'WEFT_ERR_UNAUTHORIZED') && why.test(e.message);

test('a token round-trips ns and sa; the secret is 0600 and reused', () =>
  withDir(async (dir) => {
    const clock = { t: T0 };
    const secret = await loadOrCreateJoinTokenSecret(dir, () => clock.t);
    assert.equal((await stat(join(dir, 'join-token-key'))).mode & 0o777, 0o600);
    const again = await loadOrCreateJoinTokenSecret(dir, () => clock.t);
    assert.deepEqual(again.key, secret.key);
    const token = await createJoinToken(secret, { namespace: 'shop', serviceAccount: 'cart', ttlMs: 60_000 });
    const claims = await verifyJoinToken(again, token);
    assert.equal(claims.namespace, 'shop');
    assert.equal(claims.serviceAccount, 'cart');
    assert.equal(claims.expiresAt.getTime(), T0 + 60_000);
    assert.match(claims.id, /^[A-Za-z0-9_-]{22}$/);
  }));

test('expired, forged, malformed and wrong-algorithm tokens are refused with a reason', () =>
  withDir(async (dir) => {
    const clock = { t: T0 };
    const secret = await loadOrCreateJoinTokenSecret(dir, () => clock.t);
    const token = await createJoinToken(secret, { namespace: 'shop', serviceAccount: 'cart', ttlMs: 60_000 });
    clock.t = T0 + 60_000;
    await assert.rejects(verifyJoinToken(secret, token), refused(/expired/));
    clock.t = T0;

    const otherSecret = { key: new Uint8Array(32).fill(7), now: () => clock.t };
    const forged = await createJoinToken(otherSecret, { namespace: 'shop', serviceAccount: 'admin', ttlMs: 60_000 });
    await assert.rejects(verifyJoinToken(secret, forged), refused(/bad signature/));

    const [h, , s] = token.split('.');
    const swapped = `${h}.${Buffer.from(JSON.stringify({ ns: 'kube-system', sa: 'admin', exp: 9e9 })).toString('base64url')}.${s}`;
    await assert.rejects(verifyJoinToken(secret, swapped), refused(/bad signature/));

    await assert.rejects(verifyJoinToken(secret, 'not-a-jwt'), refused(/malformed/));
    await assert.rejects(verifyJoinToken(secret, 'a.b.c'), refused(/malformed/));

    const noNs = await new SignJWT({ sa: 'x' }).setProtectedHeader({ alg: 'HS256' }).setIssuer('weft').setAudience('weft-join')
      .setExpirationTime(T0 / 1000 + 60).setJti('j').sign(secret.key);
    await assert.rejects(verifyJoinToken(secret, noNs), refused(/malformed \(bad ns claim\)/));

    const noExp = await new SignJWT({ ns: 'a', sa: 'b' }).setProtectedHeader({ alg: 'HS256' }).setIssuer('weft').setAudience('weft-join')
      .setJti('j').sign(secret.key);
    await assert.rejects(verifyJoinToken(secret, noExp), refused(/malformed \(exp claim/));

    const hs512 = await new SignJWT({ ns: 'a', sa: 'b' }).setProtectedHeader({ alg: 'HS512' }).setIssuer('weft').setAudience('weft-join')
      .setExpirationTime(T0 / 1000 + 60).setJti('j').sign(new Uint8Array(64).fill(1));
    await assert.rejects(verifyJoinToken(secret, hs512), refused(/algorithm/));
  }));

test('createJoinToken validates its input', () =>
  withDir(async (dir) => {
    const secret = await loadOrCreateJoinTokenSecret(dir);
    await assert.rejects(createJoinToken(secret, { namespace: '', serviceAccount: 'a', ttlMs: 60_000 }), (e) => isWeftError(e, 'WEFT_ERR_INVALID'));
    await assert.rejects(createJoinToken(secret, { namespace: 'a', serviceAccount: 'b/c', ttlMs: 60_000 }), (e) => isWeftError(e, 'WEFT_ERR_INVALID'));
    await assert.rejects(createJoinToken(secret, { namespace: 'a', serviceAccount: 'b', ttlMs: 0 }), (e) => isWeftError(e, 'WEFT_ERR_INVALID'));
  }));
