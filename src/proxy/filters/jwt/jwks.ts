/**
 * Where a provider's keys come from: an inline / file JWKS (parsed once, at create) or
 * a remote JWKS fetched over HTTP(S) with a bounded timeout and size, cached for
 * cache_duration, fetched once for all concurrent requests, and fetched again when a
 * token names a kid the cached set lacks (key rotation) — at most once per cooldown,
 * so tokens with made-up kids cannot turn the proxy into a load generator for the IdP.
 */
import type { JSONWebKeySet, JWTVerifyGetKey } from 'jose';
import { loadJose } from './jose-lazy.js';
import { WeftError } from '../../../lib/errors.js';

export type KeyResolver = JWTVerifyGetKey;

export interface JwksSource {
  /** Keys to verify with; rejects (WEFT_ERR_UNAVAILABLE) when a remote set cannot be fetched. */
  keys(): KeyResolver | Promise<KeyResolver>;
  /** Called when a token's kid is not in the set: true if a fresh set was fetched (retry then). */
  refreshForUnknownKid(): Promise<boolean>;
}

/** Parses a JWKS document; throws a plain Error naming the problem. */
export function parseJwks(text: string): KeyResolver {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new Error(`not JSON: ${(e as Error).message}`, { cause: e });
  }
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { keys?: unknown }).keys)) throw new Error('a JWKS needs a "keys" list');
  // What jose's createLocalJWKSet checks, here at config time (it runs at the first token).
  if (!(doc as { keys: unknown[] }).keys.every((k) => typeof k === 'object' && k !== null && !Array.isArray(k))) throw new Error('every entry of "keys" must be a JWK object');
  // The key set itself is built on first use (jose is loaded lazily, jose-lazy.ts).
  let local: JWTVerifyGetKey | undefined;
  return async (header, token) => {
    local ??= (await loadJose()).createLocalJWKSet(doc as JSONWebKeySet);
    return local(header, token);
  };
}

export function localJwks(text: string): JwksSource {
  const resolver = parseJwks(text);
  return { keys: () => resolver, refreshForUnknownKid: async () => false };
}

export interface RemoteJwksOptions {
  readonly uri: string;
  readonly timeoutMs: number;
  readonly cacheMs: number;
  /** Minimum time between two fetches triggered by unknown kids. */
  readonly cooldownMs: number;
  /** Monotonic clock in ms (FilterDeps.now). */
  readonly now: () => number;
}

/** A JWKS is a few KiB; anything past this is not one. */
const MAX_JWKS_BYTES = 1024 * 1024;

async function fetchJwks(uri: string, timeoutMs: number): Promise<KeyResolver> {
  let res: Response;
  try {
    res = await fetch(uri, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' }, redirect: 'error' });
  } catch (e) {
    throw new WeftError('WEFT_ERR_UNAVAILABLE', `JWKS fetch from ${uri} failed: ${(e as Error).message}`, { cause: e });
  }
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new WeftError('WEFT_ERR_UNAVAILABLE', `JWKS fetch from ${uri} answered ${res.status}`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body?.getReader();
  for (;;) {
    const r = reader === undefined ? { done: true as const, value: undefined } : await reader.read();
    if (r.done) break;
    size += r.value.byteLength;
    if (size > MAX_JWKS_BYTES) {
      await reader?.cancel();
      throw new WeftError('WEFT_ERR_UNAVAILABLE', `JWKS from ${uri} is larger than ${MAX_JWKS_BYTES} bytes`);
    }
    chunks.push(r.value);
  }
  try {
    return parseJwks(Buffer.concat(chunks).toString('utf8'));
  } catch (e) {
    throw new WeftError('WEFT_ERR_UNAVAILABLE', `JWKS from ${uri} is invalid: ${(e as Error).message}`, { cause: e });
  }
}

export function remoteJwks(o: RemoteJwksOptions): JwksSource & { readonly fetches: () => number } {
  let current: KeyResolver | undefined;
  let fetchedAt = -Infinity;
  let lastAttempt = -Infinity;
  let inflight: Promise<KeyResolver> | undefined;
  let fetches = 0;
  let lastError: unknown;
  const load = (): Promise<KeyResolver> => {
    inflight ??= (async () => {
      lastAttempt = o.now();
      fetches++;
      try {
        const k = await fetchJwks(o.uri, o.timeoutMs);
        current = k;
        fetchedAt = o.now();
        lastError = undefined;
        return k;
      } catch (e) {
        lastError = e;
        throw e;
      } finally {
        inflight = undefined;
      }
    })();
    return inflight;
  };
  return {
    keys() {
      const now = o.now();
      if (current !== undefined && (now - fetchedAt < o.cacheMs || (lastError !== undefined && now - lastAttempt < o.cooldownMs))) return current;
      // An expired set is still better than none while the IdP is down: use it if the refetch fails.
      if (current !== undefined) {
        const stale = current;
        return load().catch(() => stale);
      }
      // While the IdP is down, requests fail fast instead of each one trying again.
      if (lastError !== undefined && inflight === undefined && now - lastAttempt < o.cooldownMs) return Promise.reject(lastError);
      return load();
    },
    async refreshForUnknownKid() {
      if (inflight !== undefined) {
        await inflight.catch(() => undefined);
        return true;
      }
      if (o.now() - lastAttempt < o.cooldownMs) return false;
      try {
        await load();
        return true;
      } catch {
        return false;
      }
    },
    fetches: () => fetches,
  };
}
