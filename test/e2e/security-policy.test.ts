// SecurityPolicy end to end (issue 6, "Tests"): authorization and JWT written as
// SecurityPolicy objects, translated by the control plane, enforced by real `weft proxy`
// processes over mTLS. A catalog sidecar (the server) and three callers with their own
// identities: shop/web, shop/admin and partner/partner. Every (caller, method, path,
// header) case of the matrix goes app → caller's sidecar → mTLS → catalog's sidecar;
// then JWT tokens signed with jose (valid, expired, wrong issuer, wrong audience, bad
// signature, claims in rules, a rotated JWKS served over HTTP).
//
// test/integration/proxy-authz.test.ts and proxy-jwt.test.ts check the proxy filters
// with hand-written Envoy config; this file checks the whole path from the objects.
// The control plane runs in this process; the proxies are the built binary.
// Readiness is printed lines and polled state; no sleeps.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { startControlPlane, type ControlPlane } from '../../src/control/control-plane.js';
import { startApp, type App } from './helpers/http.js';
import { killAll, startWeft, stderrTails, until } from './helpers/procs.js';

const PROXY_READY = /^weft proxy ready: admin=(\S+) outbound=(\S+) node=(\S+)$/m;
const INBOUND_LINE = /^weft proxy inbound: \S+:(\d+) /;
const ISSUER = 'https://idp.test';

let tmp: string;
let cp: ControlPlane;
let catalog: App;
let jwksServer: Server;
let jwks: JWK[] = [];
let jwksHits = 0;
let jwksUri = '';
let catalogNode = '';
let failed = false;
const outbound: Record<string, string> = {};
const agent = new Agent({ keepAlive: true, maxSockets: 8 });

interface Key { kid: string; privateKey: CryptoKey; jwk: JWK }
async function makeKey(kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}
let k1: Key;
let k2: Key;

async function token(claims: Record<string, unknown>, o: { key?: Key; kid?: string; iss?: string; aud?: string; exp?: number } = {}): Promise<string> {
  const key = o.key ?? k1;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: o.kid ?? key.kid })
    .setIssuer(o.iss ?? ISSUER)
    .setAudience(o.aud ?? 'catalog')
    .setSubject('alice')
    .setIssuedAt()
    .setExpirationTime(o.exp ?? Math.floor(Date.now() / 1000) + 600)
    .sign(key.privateKey);
}

interface Reply { status: number; body: string; flags: string }

/** `METHOD http://catalog.shop/PATH` through `caller`'s outbound listener (explicit-proxy style, as curl -x). */
function call(caller: string, method: string, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  const proxy = outbound[caller]!;
  const i = proxy.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const req = request({ host: proxy.slice(0, i), port: Number(proxy.slice(i + 1)), method, path: `http://catalog.shop${path}`, agent, headers: { host: 'catalog.shop', ...headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, flags: String(res.headers['x-weft-response-flags'] ?? '') }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${path} via ${caller}: no answer in 10 s`)));
    req.on('error', reject);
    req.end();
  });
}

async function apply(yaml: string): Promise<void> {
  const res = await fetch(`${cp.apiUrl}/apply`, { method: 'POST', headers: { authorization: `Bearer ${cp.adminToken}`, 'content-type': 'application/yaml' }, body: yaml });
  assert.equal(res.status, 200, `apply: ${res.status} ${await res.text()}`);
}

async function startSidecar(namespace: string, service: string, extra: readonly string[]): Promise<{ outbound: string; admin: string; nodeId: string }> {
  const token = await cp.ca.ca.createJoinToken({ namespace, serviceAccount: service, ttlMs: 600_000 });
  const args = [
    'proxy', '--xds', cp.xdsAddress, '--token', token, '--api', cp.apiUrl, '--service', service, '--namespace', namespace,
    // Callers too get an inbound listener from the control plane: on a free loopback port, never 15006.
    '--admin-addr', '127.0.0.1:0', '--outbound-addr', '127.0.0.1:0', '--inbound-addr', '127.0.0.1:0', '--concurrency', '1', '--log-level', 'warn', ...extra,
  ];
  const p = await startWeft(`weft proxy ${namespace}/${service}`, args, INBOUND_LINE, { home: tmp, timeoutMs: 30_000 });
  const ready = PROXY_READY.exec(p.run.stdout());
  assert.ok(ready, `no ready line in:\n${p.run.stdout()}`);
  return { admin: ready[1]!, outbound: ready[2]!, nodeId: ready[3]! };
}

before(async () => {
  failed = true;
  tmp = await mkdtemp(join(tmpdir(), 'weft-security-policy-e2e-'));
  [k1, k2] = await Promise.all([makeKey('k1'), makeKey('k2')]);
  jwks = [k1.jwk];
  jwksServer = createServer((_req, res) => {
    jwksHits++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: jwks }));
  });
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', () => r()));
  jwksUri = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`;

  cp = await startControlPlane({ dataDir: join(tmp, 'data'), apiAddr: '127.0.0.1:0', xdsAddr: '127.0.0.1:0', logLevel: 'silent' });
  catalog = await startApp('catalog');
  await apply(`
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: catalog, namespace: shop }
spec:
  ports: [{ name: http, port: 80, targetPort: ${catalog.port}, protocol: http }]
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: web, namespace: shop }
spec:
  ports: [{ name: http, port: 80, targetPort: 8080, protocol: http }]
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: admin, namespace: shop }
spec:
  ports: [{ name: http, port: 80, targetPort: 8080, protocol: http }]
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: partner, namespace: partner }
spec:
  ports: [{ name: http, port: 80, targetPort: 8080, protocol: http }]
---
apiVersion: weft.dev/v1alpha1
kind: SecurityPolicy
metadata: { name: shop-strict, namespace: shop }
spec:
  mtls: { mode: STRICT }
---
apiVersion: weft.dev/v1alpha1
kind: SecurityPolicy
metadata: { name: catalog-allow, namespace: shop }
spec:
  targetRefs: [{ kind: Service, name: catalog }]
  authorization:
    action: ALLOW
    rules:
      - from: [{ namespaces: [shop] }]
        to: [{ methods: [GET], paths: ['/items/*', /health] }]
      - from: [{ serviceAccounts: [admin] }]
      - from: [{ namespaces: [partner] }]
        to: [{ paths: ['/public/*'] }]
      - from: [{ principals: ['spiffe://cluster.local/ns/partner/*'] }]
        to: [{ paths: [/beta], headers: [{ name: x-beta, values: ['yes'] }] }]
      - from: [{ services: [web] }]
        to: [{ paths: [/by-service] }]
---
apiVersion: weft.dev/v1alpha1
kind: SecurityPolicy
metadata: { name: catalog-deny, namespace: shop }
spec:
  targetRefs: [{ kind: Service, name: catalog }]
  authorization:
    action: DENY
    rules:
      - from: [{ notPrincipals: ['spiffe://cluster.local/ns/shop/sa/admin'] }]
        to: [{ methods: [DELETE] }]
---
apiVersion: weft.dev/v1alpha1
kind: SecurityPolicy
metadata: { name: catalog-audit, namespace: shop }
spec:
  targetRefs: [{ kind: Service, name: catalog }]
  authorization:
    action: AUDIT
    rules: [{ to: [{ paths: ['/admin/*'] }] }]
---
apiVersion: weft.dev/v1alpha1
kind: SecurityPolicy
metadata: { name: catalog-jwt, namespace: shop }
spec:
  targetRefs: [{ kind: Service, name: catalog }]
  jwt:
    providers: [{ name: idp, issuer: '${ISSUER}', audiences: [catalog], jwks: { inline: '${JSON.stringify({ keys: [k1.jwk] })}' } }]
`);
  catalogNode = (await startSidecar('shop', 'catalog', ['--workload-port', String(catalog.port)])).nodeId;
  const callers = await Promise.all([startSidecar('shop', 'web', []), startSidecar('shop', 'admin', []), startSidecar('partner', 'partner', [])]);
  outbound.web = callers[0].outbound;
  outbound.admin = callers[1].outbound;
  outbound.partner = callers[2].outbound;
  // Ready: each caller reaches catalog over mTLS, and the RBAC of the `services: [web]`
  // rule knows web's identity (from its registered workload).
  for (const c of ['web', 'admin', 'partner']) {
    await until(`catalog reachable from ${c}`, 20_000, async () => ((await call(c, 'GET', '/health')).status === (c === 'partner' ? 403 : 200) ? true : undefined), 100);
  }
  await until('the services: [web] rule resolved', 20_000, async () => ((await call('web', 'GET', '/by-service')).status === 200 ? true : undefined), 100);
  failed = false;
});

after(async () => {
  agent.destroy();
  const tails = failed ? stderrTails() : '';
  if (tails !== '') process.stdout.write(tails.replace(/^/gm, '# ') + '\n');
  await killAll();
  await catalog?.close();
  await new Promise<void>((r) => { if (jwksServer === undefined) r(); else jwksServer.close(() => r()); });
  await cp?.close();
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
});

function step(name: string, fn: () => Promise<void>): void {
  test(name, async () => {
    try { await fn(); } catch (e) { failed = true; throw e; }
  });
}

// [caller, method, path, extra headers, expected status]; 403s are the proxy's RBAC denials.
const MATRIX: readonly [string, string, string, Record<string, string>, number][] = [
  ['web', 'GET', '/items/1', {}, 200],
  ['web', 'GET', '/health', {}, 200],
  ['web', 'POST', '/items/1', {}, 403], // shop may only GET
  ['web', 'GET', '/admin/users', {}, 403], // AUDIT only logs; no ALLOW rule matches
  ['web', 'DELETE', '/items/1', {}, 403], // DENY before ALLOW
  ['web', 'GET', '/by-service', {}, 200], // services: [web]
  ['web', 'GET', '/public/a', {}, 403],
  ['admin', 'GET', '/admin/users', {}, 200],
  ['admin', 'POST', '/items/1', {}, 200],
  ['admin', 'DELETE', '/items/1', {}, 200], // the DENY rule spares sa/admin
  ['admin', 'GET', '/by-service', {}, 200], // sa/admin may do anything
  ['partner', 'GET', '/by-service', {}, 403], // partner is not Service web
  ['partner', 'GET', '/items/1', {}, 403], // another namespace
  ['partner', 'GET', '/public/a', {}, 200],
  ['partner', 'DELETE', '/public/a', {}, 403], // DENY
  ['partner', 'GET', '/beta', { 'x-beta': 'yes' }, 200], // principal prefix + header
  ['partner', 'GET', '/beta', { 'x-beta': 'no' }, 403],
  ['partner', 'GET', '/beta', {}, 403],
];

describe('authorization matrix from SecurityPolicy objects, through real proxies', { concurrency: false }, () => {
  step(`${MATRIX.length} cases (caller × method × path × header): allow/deny as Istio's semantics say`, async () => {
    const wrong: string[] = [];
    const before = catalog.served;
    for (const [caller, method, path, headers, want] of MATRIX) {
      const r = await call(caller, method, path, headers);
      if (r.status !== want) wrong.push(`${caller} ${method} ${path} ${JSON.stringify(headers)}: ${r.status} (want ${want}) ${r.body.slice(0, 80)}`);
      else if (want === 403) assert.equal(r.body, 'RBAC: access denied', `${caller} ${method} ${path}`);
    }
    assert.deepEqual(wrong, []);
    // A denied request never reaches the app.
    assert.equal(catalog.served - before, MATRIX.filter((m) => m[4] === 200).length);
  });
});

/** Whether catalog's proxy acked the last CDS the control plane sent it (GET /xds/clients). */
async function cdsAcked(): Promise<true | undefined> {
  const r = (await (await fetch(`${cp.apiUrl}/xds/clients`, { headers: { authorization: `Bearer ${cp.adminToken}` } })).json()) as { items: { nodeId: string; types: Record<string, { ackedVersion?: string; sentVersion?: string }> }[] };
  const cds = r.items.find((c) => c.nodeId === catalogNode)?.types.CDS;
  return cds !== undefined && cds.ackedVersion === cds.sentVersion ? true : undefined;
}

const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });

function jwtPolicy(jwks: string): string {
  return `
apiVersion: weft.dev/v1alpha1
kind: SecurityPolicy
metadata: { name: catalog-jwt, namespace: shop }
spec:
  targetRefs: [{ kind: Service, name: catalog }]
  jwt:
    providers: [{ name: idp, issuer: '${ISSUER}', audiences: [catalog], jwks: ${jwks} }]
`;
}

describe('JWT from SecurityPolicy.jwt, tokens signed with jose', { concurrency: false }, () => {
  step('valid: 200; expired, bad signature: 401; wrong audience: 403 (as Envoy); wrong issuer: counted as no token', async () => {
    assert.equal((await call('web', 'GET', '/items/1', bearer(await token({})))).status, 200);
    const expired = await call('web', 'GET', '/items/1', bearer(await token({}, { exp: Math.floor(Date.now() / 1000) - 600 })));
    assert.equal(expired.status, 401);
    assert.equal(expired.flags, 'JWT');
    assert.equal((await call('web', 'GET', '/items/1', bearer(await token({}, { key: k2, kid: 'k1' })))).status, 401);
    assert.equal((await call('web', 'GET', '/items/1', bearer('not.a.jwt'))).status, 401);
    assert.equal((await call('web', 'GET', '/items/1', bearer(await token({}, { aud: 'billing' })))).status, 403);
    // jwt.required is false: no token passes, and a token no provider claims counts as none.
    assert.equal((await call('web', 'GET', '/items/1')).status, 200);
    assert.equal((await call('web', 'GET', '/items/1', bearer(await token({}, { iss: 'https://evil.test' })))).status, 200);
    // A valid token does not widen authorization: partner still may not read /items.
    assert.equal((await call('partner', 'GET', '/items/1', bearer(await token({})))).status, 403);
  });

  step('JWKS rotated in the policy (inline): the new key passes, the removed one is refused', async () => {
    await apply(jwtPolicy(`{ inline: '${JSON.stringify({ keys: [k2.jwk] })}' }`));
    const fresh = await token({}, { key: k2 });
    await until('the new key accepted', 15_000, async () => ((await call('web', 'GET', '/items/1', bearer(fresh))).status === 200 ? true : undefined), 100);
    assert.equal((await call('web', 'GET', '/items/1', bearer(await token({}, { key: k1 })))).status, 401);
    // So far every CDS was acked (what the jwks.uri test below checks).
    await until('catalog\'s CDS acked', 5000, cdsAcked, 100);
  });

  step('JWKS from a URL (jwks.uri), rotated at the IdP: a new kid makes the proxy refetch', async () => {
    jwks = [k1.jwk];
    await apply(jwtPolicy(`{ uri: '${jwksUri}' }`));
    await until('tokens verified with the fetched JWKS', 15_000, async () => ((await call('web', 'GET', '/items/1', bearer(await token({}, { key: k1 })))).status === 200 && jwksHits > 0 ? true : undefined), 100);
    jwks = [k2.jwk];
    const hits = jwksHits;
    // One refetch per unknown kid, at most every 5 s (docs/security.md): bounded polling, not a sleep.
    await until('the rotated key accepted', 15_000, async () => ((await call('web', 'GET', '/items/1', bearer(await token({}, { key: k2 })))).status === 200 ? true : undefined), 250);
    assert.ok(jwksHits > hits, 'the JWKS was fetched again');
    assert.equal((await call('web', 'GET', '/items/1', bearer(await token({}, { key: k1 })))).status, 401, 'the removed key');
  });
});

describe('claim conditions and remote JWKS clusters', { concurrency: false }, () => {
  test('claims in a `when` rule decide access (request.auth.claims[group])', async () => {
    await apply(`
apiVersion: weft.dev/v1alpha1
kind: SecurityPolicy
metadata: { name: catalog-claims, namespace: shop }
spec:
  targetRefs: [{ kind: Service, name: catalog }]
  authorization:
    action: ALLOW
    rules:
      - to: [{ paths: ['/claims/*'] }]
        when: [{ key: 'request.auth.claims[group]', values: [admins] }]
`);
    try {
      await until('an admins token reaches /claims/x', 6000, async () => ((await call('partner', 'GET', '/claims/x', bearer(await token({ group: 'admins' }, { key: k2 })))).status === 200 ? true : undefined), 200);
      assert.equal((await call('partner', 'GET', '/claims/x', bearer(await token({ group: 'users' }, { key: k2 })))).status, 403);
    } finally {
      // The next case must not inherit this policy (nor its NACK).
      const res = await fetch(`${cp.apiUrl}/apis/weft.dev/v1alpha1/namespaces/shop/securitypolicies/catalog-claims`, { method: 'DELETE', headers: { authorization: `Bearer ${cp.adminToken}` } });
      assert.equal(res.status, 200, await res.text());
    }
  });

  test('a jwks.uri policy: the proxy ACKs its clusters (the STRICT_DNS jwks cluster included)', async () => {
    // The policy of the JWKS-from-a-URL case above is still applied.
    await until('catalog\'s CDS acked', 5000, cdsAcked, 200);
  });
});
