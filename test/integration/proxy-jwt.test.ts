// JWT authentication and claim-based authorization through a real proxy: jwt_authn with
// a remote JWKS (a node:http server on port 0), RBAC reading the verified payload from
// metadata, tokens signed by jose in the test; the upstream sees claim headers and no token.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { startProxy, type AccessLogEntry, type Proxy } from '../../src/proxy/proxy.js';
import { call, listener, routeConfig, startUpstream, staticCluster, waitFor, ROUTER_TYPE, type Upstream } from '../fixtures/proxy/helpers.js';

const ISS = 'https://idp.weft.test';
const JWT = 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication';
const JWT_PER_ROUTE = 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig';
const RBAC = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';

let priv: CryptoKey;
let jwk: JWK;
let jwksServer: Server;
let jwksHits = 0;
let app: Upstream;
let proxy: Proxy;
let port: number;
const log: AccessLogEntry[] = [];

async function token(claims: JWTPayload, o: { exp?: number | string; aud?: string; key?: CryptoKey } = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer(ISS).setAudience(o.aud ?? 'catalog').setIssuedAt().setExpirationTime(o.exp ?? '5m').sign(o.key ?? priv);
}

before(async () => {
  const kp = await generateKeyPair('ES256');
  priv = kp.privateKey;
  jwk = { ...(await exportJWK(kp.publicKey)), kid: 'k1', alg: 'ES256' };
  jwksServer = createServer((_req, res) => {
    jwksHits++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
  const jwksPort = (jwksServer.address() as AddressInfo).port;
  app = await startUpstream('catalog');
  const provider = {
    issuer: ISS,
    audiences: ['catalog'],
    remote_jwks: { http_uri: { uri: `http://127.0.0.1:${jwksPort}/.well-known/jwks.json`, cluster: `jwks|127.0.0.1:${jwksPort}`, timeout: { seconds: 2 } }, cache_duration: { seconds: 300 } },
    payload_in_metadata: ISS,
    claim_to_headers: [{ header_name: 'x-jwt-sub', claim_name: 'sub' }],
  };
  const filters = [
    { name: 'envoy.filters.http.jwt_authn', typed_config: { '@type': JWT, providers: { 'shop/catalog-jwt/idp': provider }, rules: [
      { match: { prefix: '/secure' }, requires: { provider_name: 'shop/catalog-jwt/idp' } },
      { match: { prefix: '/' }, requires: { requires_any: { requirements: [{ provider_name: 'shop/catalog-jwt/idp' }, { allow_missing: {} }] } } },
    ] } },
    { name: 'envoy.filters.http.rbac.allow', typed_config: { '@type': RBAC, rules: { action: 'ALLOW', policies: {
      'ns.shop.open[rule-0]': { permissions: [{ not_rule: { url_path: { path: { prefix: '/admin' } } } }], principals: [{ any: true }] },
      // What rbac.ts emits for `request.auth.claims[groups]: admin`: a string or a list element.
      'ns.shop.admins[rule-0]': { permissions: [{ any: true }], principals: [{ or_ids: { ids: [
        { metadata: { filter: 'envoy.filters.http.jwt_authn', path: [{ key: ISS }, { key: 'groups' }], value: { string_match: { exact: 'admin' } } } },
        { metadata: { filter: 'envoy.filters.http.jwt_authn', path: [{ key: ISS }, { key: 'groups' }], value: { list_match: { one_of: { string_match: { exact: 'admin' } } } } } },
      ] } }] },
    } } } },
    { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE } },
  ];
  const rc = routeConfig('r', [{ name: 'catalog', domains: ['*'], routes: [
    { match: { prefix: '/public' }, route: { cluster: 'app' }, typed_per_filter_config: { 'envoy.filters.http.jwt_authn': { '@type': JWT_PER_ROUTE, disabled: true } } },
    { match: { prefix: '/' }, route: { cluster: 'app' } },
  ] }]);
  proxy = await startProxy({
    logLevel: 'silent',
    adminAddr: '127.0.0.1:0',
    onAccessLog: (e) => log.push(e),
    bootstrap: { static_resources: { listeners: [listener('in', { route_config: rc }, 0, { http_filters: filters })], clusters: [staticCluster('app', [app.port])] } },
  });
  port = proxy.listenerPort('in')!;
});

after(async () => {
  await proxy?.close();
  await app?.close();
  await new Promise<void>((r) => { jwksServer?.closeAllConnections(); jwksServer?.close(() => r()); });
});

const get = (path: string, headers: Record<string, string> = {}) => call(port, path, { headers: { host: 'catalog.shop', ...headers } });
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

describe('jwt_authn through the proxy', () => {
  test('a valid token: 200; the upstream gets the sub claim as a header and no Authorization header', async () => {
    const r = await get('/items', bearer(await token({ sub: 'alice' })));
    assert.equal(r.status, 200, r.text);
    const seen = app.seen.at(-1)!;
    assert.equal(seen.headers['x-jwt-sub'], 'alice');
    assert.equal(seen.headers.authorization, undefined);
    assert.equal(jwksHits, 1, 'JWKS fetched on first use');
  });

  test('no token: allowed where the rule says allow_missing, 401 (no error=) where required', async () => {
    assert.equal((await get('/items')).status, 200);
    const before = app.seen.length;
    const r = await get('/secure/data');
    assert.equal(r.status, 401);
    assert.equal(r.headers['www-authenticate'], 'Bearer realm="http://catalog.shop/secure/data"');
    assert.equal(r.headers['x-weft-response-flags'], 'JWT');
    assert.equal(app.seen.length, before);
  });

  test('expired, wrong audience, bad signature: refused with error="invalid_token"; flag JWT in the access log', async () => {
    const expired = await get('/items', bearer(await token({ sub: 'a' }, { exp: Math.floor(Date.now() / 1000) - 600 })));
    assert.equal(expired.status, 401);
    assert.equal(expired.headers['www-authenticate'], 'Bearer realm="http://catalog.shop/items", error="invalid_token"');
    assert.equal((await get('/items', bearer(await token({ sub: 'a' }, { aud: 'billing' })))).status, 403);
    const other = (await generateKeyPair('ES256')).privateKey;
    assert.equal((await get('/secure/x', bearer(await token({ sub: 'a' }, { key: other })))).status, 401);
    const e = await waitFor('access log', () => log.find((x) => x.path === '/secure/x' && x.status === 401));
    assert.equal(e.flag, 'JWT');
  });

  test('PerRouteConfig disabled: the public route ignores even a bad token', async () => {
    assert.equal((await get('/public/info', bearer('garbage.token.here'))).status, 200);
  });

  test('gRPC: an invalid token is UNAUTHENTICATED (16)', async () => {
    const r = await get('/catalog.v1.Catalog/List', { ...bearer('x.y.z'), 'content-type': 'application/grpc' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['grpc-status'], '16');
  });
});

describe('RBAC on JWT claims (metadata written by jwt_authn)', () => {
  test('groups: ["admin"] (a list claim) reaches /admin', async () => {
    assert.equal((await get('/admin/users', bearer(await token({ sub: 'root', groups: ['dev', 'admin'] })))).status, 200);
  });

  test('groups: "admin" (a string claim) reaches /admin', async () => {
    assert.equal((await get('/admin/users', bearer(await token({ sub: 'root', groups: 'admin' })))).status, 200);
  });

  test('other groups and anonymous requests are denied at /admin (403 RBAC)', async () => {
    const r = await get('/admin/users', bearer(await token({ sub: 'eve', groups: ['dev'] })));
    assert.equal(r.status, 403);
    assert.equal(r.text, 'RBAC: access denied');
    assert.equal(r.headers['x-weft-response-flags'], 'RBAC');
    assert.equal((await get('/admin/users')).status, 403);
  });

  test('the JWKS was fetched once for all of the above (cache_duration)', () => {
    assert.equal(jwksHits, 1);
  });
});
