// jwt_authn with tokens signed by jose: valid, expired, wrong issuer, wrong audience,
// bad signature, remote JWKS rotation (a real node:http server on port 0), missing
// tokens allowed or required, claim_to_headers, metadata for RBAC, per-route config.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { ConfigError } from '../../config/proto-values.js';
import { fixtureRequest } from '../request-fixture.js';
import type { FilterDeps, FilterVerdict, HttpFilter } from '../types.js';
import { jwtFactory } from './filter.js';
import { JWKS_REFRESH_COOLDOWN_MS } from './config.js';

const ISS = 'https://issuer.example';
const T = 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication';

interface Key { priv: CryptoKey; jwk: JWK }
async function key(kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  return { priv: privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}

async function sign(k: Key, claims: JWTPayload, o: { exp?: string | number; iss?: string } = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: k.jwk.kid! }).setIssuer(o.iss ?? ISS).setIssuedAt().setExpirationTime(o.exp ?? '5m').sign(k.priv);
}

let k1: Key; let k2: Key; let stranger: Key;
let jwks: JWK[] = [];
let jwksServer: Server;
let jwksHits = 0;
let jwksUri = '';
let clock = 0;
const deps: FilterDeps = { now: () => clock, random: Math.random };

before(async () => {
  [k1, k2, stranger] = await Promise.all([key('k1'), key('k2'), key('k1')]);
  jwks = [k1.jwk];
  jwksServer = createServer((req, res) => {
    jwksHits++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: jwks }));
  });
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
  jwksUri = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;
});
after(() => new Promise<void>((r) => { jwksServer.closeAllConnections(); jwksServer.close(() => r()); }));

const inline = (): Record<string, unknown> => ({ inline_string: JSON.stringify({ keys: [k1.jwk] }) });
const provider = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ issuer: ISS, audiences: ['catalog'], local_jwks: inline(), payload_in_metadata: ISS, ...extra });
const make = (cfg: Record<string, unknown>): HttpFilter => jwtFactory.create({ '@type': T, ...cfg }, 'f', deps);
/** What the control plane emits (jwt.ts): one rule for every path. */
const optional = (p: Record<string, unknown>): HttpFilter => make({ providers: { p }, rules: [{ match: { prefix: '/' }, requires: { requires_any: { requirements: [{ provider_name: 'p' }, { allow_missing: {} }] } } }] });
const required = (p: Record<string, unknown>): HttpFilter => make({ providers: { p }, rules: [{ match: { prefix: '/' }, requires: { provider_name: 'p' } }] });
const bearer = (t: string) => fixtureRequest({ path: '/items', headers: { authorization: `Bearer ${t}` } });
const run = async (f: HttpFilter, r = fixtureRequest(), perRoute?: unknown): Promise<FilterVerdict> => f.decodeHeaders(r, perRoute);

describe('jwt_authn: verification', () => {
  test('a valid token passes; its payload lands in metadata under the issuer; the token header is stripped (forward: false)', async () => {
    const r = bearer(await sign(k1, { sub: 'alice', aud: 'catalog', groups: ['admin'] }));
    assert.equal(await run(required(provider()), r), undefined);
    const md = r.metadata.get('envoy.filters.http.jwt_authn')?.[ISS] as JWTPayload;
    assert.equal(md.sub, 'alice');
    assert.deepEqual(md.groups, ['admin']);
    assert.deepEqual(r.changes, [['authorization', undefined]]);
  });

  test('forward: true keeps the token; forward_payload_header and claim_to_headers set upstream headers', async () => {
    const t = await sign(k1, { sub: 'bob', aud: 'catalog', org: { team: 'blue' }, n: 7 });
    const r = bearer(t);
    const f = required(provider({ forward: true, forward_payload_header: 'x-jwt-payload', claim_to_headers: [{ header_name: 'x-sub', claim_name: 'sub' }, { header_name: 'x-team', claim_name: 'org.team' }, { header_name: 'x-n', claim_name: 'n' }] }));
    assert.equal(await run(f, r), undefined);
    assert.deepEqual(r.changes, [['x-jwt-payload', t.split('.')[1]], ['x-sub', 'bob'], ['x-team', 'blue'], ['x-n', '7']]);
  });

  const refused = (status: number, invalid = true) => ({ flag: 'JWT', status, headers: { 'www-authenticate': `Bearer realm="http://svc.default/items"${invalid ? ', error="invalid_token"' : ''}` } });

  test('expired → 401 invalid_token (beyond the 60 s clock skew)', async () => {
    const t = await sign(k1, { aud: 'catalog' }, { exp: Math.floor(Date.now() / 1000) - 120 });
    assert.deepEqual(await run(optional(provider()), bearer(t)), refused(401));
    const skewed = await sign(k1, { aud: 'catalog' }, { exp: Math.floor(Date.now() / 1000) - 30 });
    assert.equal(await run(optional(provider()), bearer(skewed)), undefined, 'within clock_skew_seconds');
  });

  test('wrong issuer → 401 (a token for no configured provider)', async () => {
    assert.deepEqual(await run(required(provider()), bearer(await sign(k1, { aud: 'catalog' }, { iss: 'https://evil.example' }))), refused(401));
  });

  test('wrong audience → 403, as Envoy answers JwtAudienceNotAllowed', async () => {
    assert.deepEqual(await run(required(provider()), bearer(await sign(k1, { aud: 'billing' }))), refused(403));
  });

  test('bad signature (same kid, other key) and garbage → 401', async () => {
    assert.deepEqual(await run(required(provider()), bearer(await sign(stranger, { aud: 'catalog' }))), refused(401));
    assert.deepEqual(await run(required(provider()), bearer('not.a.jwt')), refused(401));
    const t = await sign(k1, { aud: 'catalog' });
    const [h, p] = t.split('.');
    assert.deepEqual(await run(required(provider()), bearer(`${h}.${p}.`)), refused(401));
  });

  test('missing token: passes when allow_missing, 401 without error= when required', async () => {
    assert.equal(optional(provider()).decodeHeaders(fixtureRequest({ path: '/items' }), undefined), undefined, 'no token: decided synchronously');
    assert.equal(await run(optional(provider()), fixtureRequest({ path: '/items' })), undefined);
    assert.deepEqual(await run(required(provider()), fixtureRequest({ path: '/items' })), refused(401, false));
  });

  test('allow_missing still refuses a bad token; a token of an unknown issuer counts as missing', async () => {
    assert.deepEqual(await run(optional(provider()), bearer(await sign(stranger, { aud: 'catalog' }))), refused(401));
    assert.equal(await run(optional(provider()), bearer(await sign(k1, {}, { iss: 'https://other.example' }))), undefined);
  });

  test('allow_missing_or_failed lets everything through but records what verified', async () => {
    const f = make({ providers: { p: provider({ failed_status_in_metadata: 'failure' }) }, rules: [{ match: { prefix: '/' }, requires: { allow_missing_or_failed: {} } }] });
    const r = bearer(await sign(stranger, { aud: 'catalog' }));
    assert.equal(await run(f, r), undefined);
    assert.deepEqual(r.metadata.get('envoy.filters.http.jwt_authn')?.failure, { code: 'JwtVerificationFail', message: 'Jwt verification fails' });
  });

  test('gRPC: the 401 maps to UNAUTHENTICATED (16) through local-reply', async () => {
    const { grpcStatusFor } = await import('../../local-reply.js');
    const v = await run(required(provider()), fixtureRequest({ grpc: true }));
    assert.equal(grpcStatusFor(v!.flag, v!.status!), 16);
  });
});

describe('jwt_authn: token locations, rules, requirements', () => {
  test('from_headers with value_prefix, from_params, from_cookies', async () => {
    const t = await sign(k1, { aud: 'catalog' });
    const f = required(provider({ from_headers: [{ name: 'x-token', value_prefix: 'JWT ' }], from_params: ['tok'], from_cookies: ['session'] }));
    assert.equal(await run(f, fixtureRequest({ headers: { 'x-token': `JWT ${t}` } })), undefined);
    assert.equal(await run(f, fixtureRequest({ path: `/x?tok=${t}` })), undefined);
    assert.equal(await run(f, fixtureRequest({ headers: { cookie: `a=1; session=${t}` } })), undefined);
    assert.equal((await run(f, bearer(t)))?.status, 401, 'Authorization is not looked at when locations are configured');
  });

  test('rules: the first matching rule decides; a rule without requires bypasses; path_separated_prefix and headers', async () => {
    const f = make({
      providers: { p: provider() },
      rules: [
        { match: { prefix: '/public' } },
        { match: { path_separated_prefix: '/api', headers: [{ name: 'x-env', string_match: { exact: 'prod' } }] }, requires: { provider_name: 'p' } },
      ],
    });
    assert.equal(await run(f, fixtureRequest({ path: '/public/x' })), undefined);
    assert.equal((await run(f, fixtureRequest({ path: '/api/x', headers: { 'x-env': 'prod' } })))?.status, 401);
    assert.equal(await run(f, fixtureRequest({ path: '/apix', headers: { 'x-env': 'prod' } })), undefined);
    assert.equal(await run(f, fixtureRequest({ path: '/api', headers: { 'x-env': 'dev' } })), undefined);
  });

  test('requires_all, provider_and_audiences, requirement_map and PerRouteConfig', async () => {
    const t = await sign(k1, { aud: 'billing' });
    const f = make({
      providers: { p: provider({ audiences: [] }), q: provider({ audiences: [], from_headers: [{ name: 'x-second' }] }) },
      requirement_map: { billing: { provider_and_audiences: { provider_name: 'p', audiences: ['billing'] } }, both: { requires_all: { requirements: [{ provider_name: 'p' }, { provider_name: 'q' }] } } },
      rules: [{ match: { prefix: '/' }, requirement_name: 'both' }],
    });
    assert.equal((await run(f, bearer(t)))?.status, 401, 'q has no token');
    assert.equal(await run(f, fixtureRequest({ path: '/items', headers: { authorization: `Bearer ${t}`, 'x-second': t } })), undefined);
    const billing = jwtFactory.compilePerRoute({ requirement_name: 'billing' }, 'r', deps);
    assert.equal(await run(f, bearer(t), billing), undefined);
    const catalogTok = await sign(k1, { aud: 'catalog' });
    assert.equal((await run(f, bearer(catalogTok), billing))?.status, 403);
    assert.equal(await run(f, fixtureRequest(), jwtFactory.compilePerRoute({ disabled: true }, 'r', deps)), undefined);
    assert.equal((await run(f, fixtureRequest(), jwtFactory.compilePerRoute({ requirement_name: 'nope' }, 'r', deps)))?.status, 401, 'unknown requirement: fail closed');
  });

  test('what cannot be honoured is refused', () => {
    assert.throws(() => make({ providers: { p: provider({ jwt_cache_config: {} }) } }), ConfigError);
    assert.throws(() => make({ providers: { p: provider({ remote_jwks: { http_uri: { uri: jwksUri } } }) } }), /exactly one of local_jwks, remote_jwks/);
    assert.throws(() => make({ providers: { p: provider({ local_jwks: { inline_string: '{' } }) } }), /invalid JWKS/);
    assert.throws(() => make({ providers: { p: provider() }, rules: [{ match: { prefix: '/' }, requires: { provider_name: 'x' } }] }), /no provider named "x"/);
    assert.throws(() => make({ filter_state_rules: {} }), /not supported/);
    assert.throws(() => make({ providers: {}, rules: [{ match: { prefix: '/', query_parameters: [{ name: 'a' }] } }] }), /query_parameters: not supported/);
    assert.throws(() => make({ providers: { p: provider({ claim_to_headers: [{ header_name: 'bad header', claim_name: 'sub' }] }) } }), /not a valid header name/);
  });
});

describe('jwt_authn: remote JWKS', () => {
  const remote = (extra: Record<string, unknown> = {}) => required({ issuer: ISS, remote_jwks: { http_uri: { uri: jwksUri, cluster: 'jwks|127.0.0.1', timeout: '2s' }, cache_duration: '300s' }, payload_in_metadata: ISS, ...extra });

  test('fetched once and cached; concurrent first requests share one fetch', async () => {
    jwks = [k1.jwk];
    const f = remote();
    const before = jwksHits;
    const toks = await Promise.all([1, 2, 3].map((i) => sign(k1, { n: i })));
    const out = await Promise.all(toks.map((t) => run(f, bearer(t))));
    assert.deepEqual(out, [undefined, undefined, undefined]);
    assert.equal(jwksHits - before, 1);
  });

  test('rotation: a token with a new kid makes the filter refetch (after the cooldown) and pass', async () => {
    jwks = [k1.jwk];
    clock = 0;
    const f = remote();
    assert.equal(await run(f, bearer(await sign(k1, {}))), undefined);
    const hits = jwksHits;
    jwks = [k1.jwk, k2.jwk];
    const t2 = await sign(k2, {});
    assert.equal((await run(f, bearer(t2)))?.status, 401, 'within the cooldown an unknown kid does not refetch');
    assert.equal(jwksHits, hits);
    clock += JWKS_REFRESH_COOLDOWN_MS;
    assert.equal(await run(f, bearer(t2)), undefined);
    assert.equal(jwksHits, hits + 1);
    assert.equal(await run(f, bearer(await sign(k2, {}))), undefined);
    assert.equal(jwksHits, hits + 1, 'the new set is cached');
  });

  test('an unreachable JWKS → 401 (and the failure is not retried on every request)', async () => {
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const port = (dead.address() as AddressInfo).port;
    await new Promise<void>((r) => dead.close(() => r()));
    clock = 0;
    const f = required({ issuer: ISS, remote_jwks: { http_uri: { uri: `http://127.0.0.1:${port}/jwks`, cluster: 'c', timeout: '1s' } } });
    assert.equal((await run(f, bearer(await sign(k1, {}))))?.status, 401);
    assert.equal((await run(f, bearer(await sign(k1, {}))))?.status, 401);
  });
});
