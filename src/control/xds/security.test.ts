import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../../api/types.js';
import type { ServiceSpec } from '../../api/service/service.js';
import type { WorkloadSpec } from '../../api/workload/workload.js';
import type { MeshSpec } from '../../api/mesh/mesh.js';
import type { AuthzRule, SecurityPolicySpec } from '../../api/securitypolicy/securitypolicy.js';
import { CLUSTER, LISTENER, ROUTE_CONFIGURATION } from '../../xds/type-urls.js';
import { generateClusters } from './clusters.js';
import { generateInbound } from './inbound.js';
import { parseClusterName, tlsSni } from './names.js';
import { attachRoutes, generateOutboundRouteConfig } from './routes.js';
import { mtlsModeFor, type SecurityMeshInput } from './security/inputs.js';
import { buildJwt } from './security/jwt.js';
import { buildRbac, rulePolicy, type RbacContext } from './security/rbac.js';
import { applyUpstreamTls } from './security/tls.js';
import { golden, assertValidEnvoy, fixture } from './golden-fixtures.js';

function loadInput(): SecurityMeshInput {
  const { by } = fixture('security.input.yaml');
  return {
    services: by<ServiceSpec>('Service'),
    workloads: by<WorkloadSpec>('Workload'),
    httpRoutes: [],
    grpcRoutes: [],
    mesh: by<MeshSpec>('Mesh')[0],
    securityPolicies: by<SecurityPolicySpec>('SecurityPolicy'),
  };
}

function inbound(input: SecurityMeshInput, namespace: string, name: string): NonNullable<ReturnType<typeof generateInbound>> {
  const out = generateInbound(input, { namespace, name });
  assert.ok(out);
  assertValidEnvoy(LISTENER, out.listener);
  for (const c of out.clusters) assertValidEnvoy(CLUSTER, c);
  return out;
}

type Obj = Record<string, unknown>;
const chains = (l: Obj): Obj[] => l.filter_chains as Obj[];
const chainNames = (l: Obj): string[] => chains(l).map((c) => String(c.name));

test('PERMISSIVE (Mesh), ALLOW + DENY + AUDIT, inline JWT: shop/catalog inbound is golden and valid', () => {
  const out = inbound(loadInput(), 'shop', 'catalog');
  golden('inbound-shop-catalog', out);
  assert.deepEqual(chainNames(out.listener), ['inbound|80|tls', 'inbound|9090|tls', 'inbound|5432|tls', 'inbound|http|plaintext', 'inbound|5432|plaintext']);
  const filters = ((chains(out.listener)[0]?.filters as Obj[])[0]?.typed_config as Obj).http_filters as Obj[];
  assert.deepEqual(filters.map((f) => f.name), ['envoy.filters.http.jwt_authn', 'envoy.filters.http.rbac.audit', 'envoy.filters.http.rbac.deny', 'envoy.filters.http.rbac.allow', 'envoy.filters.http.router']);
  assert.deepEqual((out.listener.listener_filters as Obj[]).map((f) => f.name), ['envoy.filters.listener.tls_inspector', 'envoy.filters.listener.http_inspector']);
});

test('STRICT (namespace policy), two TCP ports, remote JWKS: bank/ledger inbound is golden and valid', () => {
  const out = inbound(loadInput(), 'bank', 'ledger');
  golden('inbound-bank-ledger', out);
  assert.deepEqual(chainNames(out.listener), ['inbound|80|tls', 'inbound|9000|tls', 'inbound|9001|tls']);
  for (const c of chains(out.listener)) assert.ok(c.transport_socket, 'STRICT: every chain is TLS');
  assert.deepEqual(out.clusters.map((c) => c.name), ['inbound|8080||', 'inbound|9000||', 'inbound|9001||', 'jwks|login.corp.example:443']);
});

test('DISABLE (Service policy): legacy/old inbound is plaintext only, no TLS inspector', () => {
  const out = inbound(loadInput(), 'legacy', 'old');
  golden('inbound-legacy-old', out);
  assert.deepEqual(chainNames(out.listener), ['inbound|http|plaintext']);
  assert.equal(out.listener.listener_filters, undefined);
});

test('PERMISSIVE with several TCP ports: plaintext TCP is not served and a note says why', () => {
  const input = loadInput();
  const mesh = input.mesh as Resource<MeshSpec>;
  const permissive: SecurityMeshInput = { ...input, mesh, securityPolicies: (input.securityPolicies ?? []).filter((p) => p.metadata.name !== 'bank-strict') };
  const out = inbound(permissive, 'bank', 'ledger');
  assert.deepEqual(chainNames(out.listener), ['inbound|80|tls', 'inbound|9000|tls', 'inbound|9001|tls', 'inbound|http|plaintext']);
  assert.ok(out.notes.some((n) => n.includes('plaintext TCP is not served')));
});

test('outbound clusters carry mTLS with the destination SPIFFE IDs; REGISTRY_ONLY blackholes unknown hosts (golden)', () => {
  const input = loadInput();
  const clusters = generateClusters(input, 'envoy');
  for (const c of clusters) {
    const ref = parseClusterName(c.name);
    assert.ok(ref);
    applyUpstreamTls(c, input, ref, ref.port);
    assertValidEnvoy(CLUSTER, c);
  }
  const routes = generateOutboundRouteConfig(input, { namespace: 'shop' }, attachRoutes(input));
  assertValidEnvoy(ROUTE_CONFIGURATION, routes);
  // Only what this translation adds (the rest of the clusters belongs to clusters.ts and its goldens).
  golden('security-outbound', { transportSockets: Object.fromEntries(clusters.map((c) => [c.name, c.transport_socket ?? null])), catchAll: (routes.virtual_hosts as Obj[]).at(-1) });
  const catalog = clusters.find((c) => c.name === 'outbound|80||catalog.shop.svc.cluster.local');
  const tls = (catalog?.transport_socket as Obj).typed_config as Obj;
  assert.equal(tls.sni, tlsSni({ name: 'catalog', namespace: 'shop' }, 80));
  const sans = (((tls.common_tls_context as Obj).combined_validation_context as Obj).default_validation_context as Obj).match_typed_subject_alt_names;
  assert.deepEqual(sans, [{ san_type: 'URI', matcher: { exact: 'spiffe://weft.test/ns/shop/sa/catalog' } }]);
  // Service without spec.serviceAccounts: the workloads' ones.
  const web = clusters.find((c) => c.name === 'outbound|80||web.shop.svc.cluster.local');
  assert.match(JSON.stringify(web?.transport_socket), /spiffe:\/\/weft\.test\/ns\/shop\/sa\/web-sa/);
  // DISABLE destination: plaintext.
  assert.equal(clusters.find((c) => c.name === 'outbound|8000||old.legacy.svc.cluster.local')?.transport_socket, undefined);
  const vhosts = routes.virtual_hosts as Obj[];
  assert.equal(vhosts.at(-1)?.name, 'block_all');
  // ALLOW_ANY (the default): no catch-all.
  const allowAny = generateOutboundRouteConfig({ ...input, mesh: undefined } as SecurityMeshInput, { namespace: 'shop' });
  assert.ok(!(allowAny.virtual_hosts as Obj[]).some((v) => v.name === 'block_all'));
});

test('mTLS mode precedence: Service policy > namespace policy > Mesh > default PERMISSIVE', () => {
  const input = loadInput();
  assert.deepEqual(mtlsModeFor(input, { namespace: 'legacy', name: 'old' }), { mode: 'DISABLE', source: 'SecurityPolicy/legacy/old-plain' });
  assert.deepEqual(mtlsModeFor(input, { namespace: 'bank', name: 'ledger' }), { mode: 'STRICT', source: 'SecurityPolicy/bank/bank-strict' });
  assert.deepEqual(mtlsModeFor(input, { namespace: 'shop', name: 'catalog' }), { mode: 'PERMISSIVE', source: 'Mesh/default' });
  assert.equal(mtlsModeFor({ ...input, mesh: undefined } as SecurityMeshInput, { namespace: 'shop', name: 'web' }).mode, 'PERMISSIVE');
});

// ---------------------------------------------------------------------------
// RBAC semantics

const CTX: RbacContext = {
  trustDomain: 'cluster.local',
  protocol: 'http',
  port: 80,
  targetPort: 8080,
  jwtPayloadKeys: ['https://issuer.example'],
  serviceIds: (ns, name) => (ns === 'shop' && name === 'web' ? ['spiffe://cluster.local/ns/shop/sa/web'] : undefined),
};
const env = (action: 'ALLOW' | 'DENY' | 'AUDIT' = 'ALLOW', ctx: Partial<RbacContext> = {}): Parameters<typeof rulePolicy>[1] => ({ ctx: { ...CTX, ...ctx }, policyNs: 'shop', action });
const authn = (m: Obj): Obj => ({ authenticated: { principal_name: m } });

function policy(name: string, action: 'ALLOW' | 'DENY' | 'AUDIT', rules: AuthzRule[]): Resource<SecurityPolicySpec> {
  return { apiVersion: 'weft.dev/v1alpha1', kind: 'SecurityPolicy', metadata: { name, namespace: 'shop' }, spec: { authorization: { action, rules } } };
}

test('rbac: empty rule matches everything', () => {
  assert.deepEqual(rulePolicy({}, env()), { permissions: [{ any: true }], principals: [{ any: true }] });
});

test('rbac: principals wildcards → exact / prefix / suffix / any; entries OR, fields AND', () => {
  const p = rulePolicy({ from: [{ principals: ['spiffe://cluster.local/ns/a/sa/b', 'spiffe://cluster.local/ns/ops/*', '*/sa/admin'] }, { principals: ['*'], namespaces: ['prod-*'] }] }, env());
  assert.deepEqual(p?.principals, [
    {
      or_ids: {
        ids: [
          { or_ids: { ids: [authn({ exact: 'spiffe://cluster.local/ns/a/sa/b' }), authn({ prefix: 'spiffe://cluster.local/ns/ops/' }), authn({ suffix: '/sa/admin' })] } },
          { and_ids: { ids: [authn({ safe_regex: { google_re2: {}, regex: '.+' } }), authn({ safe_regex: { google_re2: {}, regex: 'spiffe://[^/]+/ns/prod-[^/]*/sa/.*' } })] } },
        ],
      },
    },
  ]);
});

test('rbac: namespaces → SPIFFE regex; notNamespaces → not_id; serviceAccounts and services → exact IDs', () => {
  const p = rulePolicy({ from: [{ namespaces: ['shop'], notNamespaces: ['shop.dev'] }] }, env());
  const re = (ns: string): Obj => authn({ safe_regex: { google_re2: {}, regex: `spiffe://[^/]+/ns/${ns}/sa/.*` } });
  assert.deepEqual(p?.principals, [{ and_ids: { ids: [re('shop'), { not_id: re('shop\\.dev') }] } }]);
  const q = rulePolicy({ from: [{ serviceAccounts: ['web', 'ops/bot'] }] }, env());
  assert.deepEqual(q?.principals, [{ or_ids: { ids: [authn({ exact: 'spiffe://cluster.local/ns/shop/sa/web' }), authn({ exact: 'spiffe://cluster.local/ns/ops/sa/bot' })] } }]);
  assert.deepEqual(rulePolicy({ from: [{ services: ['web'] }] }, env())?.principals, [authn({ exact: 'spiffe://cluster.local/ns/shop/sa/web' })]);
  // An unknown Service has no identity: the rule can never match, so it is left out.
  assert.equal(rulePolicy({ from: [{ services: ['nope'] }] }, env()), undefined);
});

test('rbac: operations → :method header, url_path, ports resolved per chain, headers', () => {
  const p = rulePolicy({ to: [{ methods: ['GET'], paths: ['/items', '/items/*', '*.js'], headers: [{ name: 'X-Env', values: ['prod', '*'] }] }] }, env());
  assert.deepEqual(p?.permissions, [
    {
      and_rules: {
        rules: [
          { header: { name: ':method', string_match: { exact: 'GET' } } },
          { or_rules: { rules: [{ url_path: { path: { exact: '/items' } } }, { url_path: { path: { prefix: '/items/' } } }, { url_path: { path: { suffix: '.js' } } }] } },
          { or_rules: { rules: [{ header: { name: 'x-env', string_match: { exact: 'prod' } } }, { header: { name: 'x-env', present_match: true } }] } },
        ],
      },
    },
  ]);
  assert.deepEqual(rulePolicy({ to: [{ ports: [80] }] }, env())?.permissions, [{ any: true }], 'Service port matches');
  assert.deepEqual(rulePolicy({ to: [{ ports: [8080] }] }, env())?.permissions, [{ any: true }], 'targetPort matches');
  assert.equal(rulePolicy({ to: [{ ports: [9090] }] }, env()), undefined, 'another port: never');
  assert.deepEqual(rulePolicy({ to: [{ notMethods: ['DELETE'] }] }, env())?.permissions, [{ not_rule: { header: { name: ':method', string_match: { exact: 'DELETE' } } } }]);
});

test('rbac: JWT claims → jwt_authn metadata (string or list element), per provider', () => {
  const p = rulePolicy({ when: [{ key: 'request.auth.claims[groups]', values: ['admin'] }] }, env());
  const meta = (value: Obj): Obj => ({ metadata: { filter: 'envoy.filters.http.jwt_authn', path: [{ key: 'https://issuer.example' }, { key: 'groups' }], value } });
  assert.deepEqual(p?.principals, [{ or_ids: { ids: [meta({ string_match: { exact: 'admin' } }), meta({ list_match: { one_of: { string_match: { exact: 'admin' } } } })] } }]);
  // No JWT provider: no claim can ever be present.
  assert.equal(rulePolicy({ when: [{ key: 'request.auth.claims[groups]', values: ['admin'] }] }, env('ALLOW', { jwtPayloadKeys: [] })), undefined);
});

test('rbac: HTTP-only fields on TCP fail closed: ALLOW never matches, DENY ignores the field', () => {
  const rule: AuthzRule = { from: [{ namespaces: ['shop'] }], to: [{ methods: ['GET'] }] };
  assert.equal(rulePolicy(rule, env('ALLOW', { protocol: 'tcp' })), undefined);
  const deny = rulePolicy(rule, env('DENY', { protocol: 'tcp' }));
  assert.deepEqual(deny?.permissions, [{ any: true }]);
  assert.deepEqual(deny?.principals, [authn({ safe_regex: { google_re2: {}, regex: 'spiffe://[^/]+/ns/shop/sa/.*' } })]);
  // request.auth.principal has no matcher: same rule.
  assert.equal(rulePolicy({ when: [{ key: 'request.auth.principal', values: ['a/b'] }] }, env('ALLOW')), undefined);
  assert.deepEqual(rulePolicy({ when: [{ key: 'request.auth.principal', values: ['a/b'] }] }, env('DENY'))?.principals, [{ any: true }]);
});

test('rbac: actions → AUDIT(LOG), DENY, ALLOW in that order; ALLOW with no usable rule denies all; names carry policy and rule', () => {
  const set = buildRbac(
    [
      policy('allow-none', 'ALLOW', [{ to: [{ ports: [1] }] }]),
      policy('deny-admin', 'DENY', [{ to: [{ methods: ['POST'] }] }, { to: [{ paths: ['/admin'] }] }]),
      policy('audit', 'AUDIT', [{}]),
    ],
    CTX,
  );
  assert.deepEqual(set.map((s) => [s.action, s.rules.action]), [['AUDIT', 'LOG'], ['DENY', 'DENY'], ['ALLOW', 'ALLOW']]);
  assert.deepEqual(Object.keys(set[1]?.rules.policies as Obj), ['ns.shop.deny-admin[rule-0]', 'ns.shop.deny-admin[rule-1]']);
  assert.deepEqual(set[2]?.rules.policies, {}, 'ALLOW present with no policy: everything is denied');
  assert.deepEqual(buildRbac([policy('deny-only', 'DENY', [])], CTX), [{ action: 'DENY', rules: { action: 'DENY', policies: {} } }]);
  assert.deepEqual(buildRbac([], CTX), []);
});

test('jwt: required → provider_name; optional → requires_any with allow_missing; payload keyed by issuer', () => {
  const mk = (required: boolean, n: number): Resource<SecurityPolicySpec> => ({
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'SecurityPolicy',
    metadata: { name: 'j', namespace: 'shop' },
    spec: { jwt: { required, providers: Array.from({ length: n }, (_, i) => ({ name: `p${i}`, issuer: `https://i${i}`, jwks: { inline: '{"keys":[{"kty":"EC"}]}' }, forwardOriginalToken: false })) } },
  });
  const req = buildJwt([mk(true, 1)]).filter?.typed_config as Obj;
  assert.deepEqual((req.rules as Obj[])[0]?.requires, { provider_name: 'shop/j/p0' });
  const opt = buildJwt([mk(false, 2)]);
  assert.deepEqual(((opt.filter?.typed_config as Obj).rules as Obj[])[0]?.requires, { requires_any: { requirements: [{ provider_name: 'shop/j/p0' }, { provider_name: 'shop/j/p1' }, { allow_missing: {} }] } });
  assert.deepEqual(opt.payloadKeys, ['https://i0', 'https://i1']);
  assert.equal(buildJwt([]).filter, undefined);
});
