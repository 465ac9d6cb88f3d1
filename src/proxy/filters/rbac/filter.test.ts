// The RBAC filter: each matcher, ALLOW/DENY/LOG semantics, shadow rules, per-route
// overrides, and the control plane's own golden output evaluated as Envoy would.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../../config/proto-values.js';
import { fixtureRequest, type FixtureRequest } from '../request-fixture.js';
import type { DownstreamConnection, FilterRequest, HttpFilter } from '../types.js';
import { compileRbacConfig } from './config.js';
import { setRbacDecisionSink, type RbacDecision } from './decision-log.js';
import { evaluateRbac, compileRbacRules } from './engine.js';
import { rbacFactory } from './filter.js';
import { compilePermission, compilePrincipal } from './matchers.js';

const T = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
const DEPS = { now: () => 0, random: Math.random };
const decisions: RbacDecision[] = [];
let restore: () => void;
before(() => { restore = setRbacDecisionSink((d) => decisions.push(d)); });
after(() => restore());

type Over = Parameters<typeof fixtureRequest>[0];
const req = (o: Over = {}): FixtureRequest => fixtureRequest(o);
const perm = (p: unknown) => compilePermission(p, 'p', 'http');
const prin = (p: unknown) => compilePrincipal(p, 'p', 'http');
const mtls = (id: string | undefined): Partial<DownstreamConnection> => ({ tls: true, peerPrincipal: id });
const filter = (rules: unknown, extra: Record<string, unknown> = {}): HttpFilter => rbacFactory.create({ '@type': T, rules, ...extra }, 'f', DEPS);
const policy = (permissions: unknown[], principals: unknown[]) => ({ permissions, principals });

describe('RBAC matchers', () => {
  test('header: exact, prefix, suffix, contains, safe_regex, present, pseudo-headers and repeated values', () => {
    const h = (name: string, m: Record<string, unknown>) => perm({ header: { name, ...m } });
    assert.ok(h(':method', { string_match: { exact: 'GET' } })(req()));
    assert.ok(!h(':method', { string_match: { exact: 'POST' } })(req()));
    assert.ok(h('x-a', { string_match: { prefix: 'ab' } })(req({ headers: { 'x-a': 'abc' } })));
    assert.ok(h('x-a', { string_match: { suffix: 'bc' } })(req({ headers: { 'x-a': 'abc' } })));
    assert.ok(h('x-a', { string_match: { contains: 'b' } })(req({ headers: { 'x-a': 'abc' } })));
    assert.ok(h('x-a', { string_match: { safe_regex: { google_re2: {}, regex: 'a.c' } } })(req({ headers: { 'x-a': 'abc' } })));
    assert.ok(!h('x-a', { string_match: { safe_regex: { regex: 'b' } } })(req({ headers: { 'x-a': 'abc' } })), 'regex is a full match');
    assert.ok(h('x-a', { present_match: true })(req({ headers: { 'x-a': '' } })));
    assert.ok(!h('x-a', { present_match: true })(req()));
    assert.ok(!h('x-a', { string_match: { exact: 'x' }, invert_match: true })(req()), 'a missing header never matches a value test');
    assert.ok(h(':authority', { string_match: { exact: 'svc.default' } })(req()));
    assert.ok(h('set-x', { string_match: { exact: 'a,b' } })(req({ headers: { 'set-x': ['a', 'b'] } as never })));
    assert.ok(h(':path', { string_match: { exact: '/a?b=1' } })(req({ path: '/a?b=1' })));
  });

  test('url_path ignores the query; ignore_case', () => {
    const u = (m: Record<string, unknown>) => perm({ url_path: { path: m } });
    assert.ok(u({ exact: '/items' })(req({ path: '/items?x=1' })));
    assert.ok(u({ prefix: '/items/' })(req({ path: '/items/3' })));
    assert.ok(!u({ prefix: '/items/' })(req({ path: '/itemsx' })));
    assert.ok(u({ exact: '/ITEMS', ignore_case: true })(req({ path: '/items' })));
  });

  test('and / or / not trees, any', () => {
    const get = { header: { name: ':method', string_match: { exact: 'GET' } } };
    const items = { url_path: { path: { prefix: '/items' } } };
    assert.ok(perm({ and_rules: { rules: [get, items] } })(req({ path: '/items' })));
    assert.ok(!perm({ and_rules: { rules: [get, items] } })(req({ path: '/x' })));
    assert.ok(perm({ or_rules: { rules: [get, items] } })(req({ method: 'POST', path: '/items' })));
    assert.ok(perm({ not_rule: get })(req({ method: 'POST' })));
    assert.ok(perm({ any: true })(req()));
    assert.ok(prin({ not_id: { any: true } })(req()) === false);
  });

  test('authenticated principal_name over the mTLS peer (exact / prefix / suffix / safe_regex / contains); plaintext never matches', () => {
    const a = (m: Record<string, unknown>) => prin({ authenticated: { principal_name: m } });
    const id = 'spiffe://weft.test/ns/shop/sa/web';
    assert.ok(a({ exact: id })(req({ connection: mtls(id) })));
    assert.ok(a({ prefix: 'spiffe://weft.test/ns/shop/' })(req({ connection: mtls(id) })));
    assert.ok(a({ suffix: '/sa/web' })(req({ connection: mtls(id) })));
    assert.ok(a({ contains: '/ns/shop/' })(req({ connection: mtls(id) })));
    assert.ok(a({ safe_regex: { google_re2: {}, regex: 'spiffe://[^/]+/ns/shop/sa/.*' } })(req({ connection: mtls(id) })));
    assert.ok(!a({ safe_regex: { regex: 'spiffe://[^/]+/ns/shop/sa/.*' } })(req({ connection: mtls('spiffe://weft.test/ns/ops/sa/x') })));
    assert.ok(!a({ prefix: '' })(req()), 'no peer certificate: no principal');
    assert.ok(prin({ authenticated: {} })(req({ connection: mtls(id) })));
    assert.ok(!prin({ authenticated: {} })(req()));
  });

  test('direct_remote_ip / remote_ip / source_ip CIDR, IPv4-mapped IPv6, destination_port and destination_ip', () => {
    const cidr = (address_prefix: string, len: number) => ({ address_prefix, prefix_len: { value: len } });
    assert.ok(prin({ direct_remote_ip: cidr('10.1.0.0', 16) })(req({ connection: { remoteAddress: '10.1.2.3' } })));
    assert.ok(!prin({ direct_remote_ip: cidr('10.1.0.0', 16) })(req({ connection: { remoteAddress: '10.2.2.3' } })));
    assert.ok(prin({ remote_ip: cidr('127.0.0.1', 32) })(req({ connection: { remoteAddress: '::ffff:127.0.0.1' } })));
    assert.ok(prin({ source_ip: cidr('fd00::', 8) })(req({ connection: { remoteAddress: 'fd12::1' } })));
    assert.ok(!prin({ direct_remote_ip: cidr('fd00::', 8) })(req({ connection: { remoteAddress: '10.0.0.1' } })));
    assert.ok(perm({ destination_port: 15006 })(req()));
    assert.ok(!perm({ destination_port: 80 })(req()));
    assert.ok(perm({ destination_port_range: { start: 15000, end: 15010 } })(req()));
    const dst = perm({ destination_ip: cidr('127.0.0.0', 8) });
    assert.ok(dst(req({ connection: { localAddress: '127.0.0.1' } as Partial<DownstreamConnection> })));
  });

  test('metadata: jwt_authn payload paths with string and list (one_of) matching, present, bool, invert', () => {
    const md = new Map([['envoy.filters.http.jwt_authn', { 'https://issuer.example': { sub: 'alice', groups: ['dev', 'admin'], admin: true, n: 3 } }]]);
    const m = (path: string[], value: unknown, invert = false) => prin({ metadata: { filter: 'envoy.filters.http.jwt_authn', path: path.map((key) => ({ key })), value, invert } });
    const r = req({ metadata: md });
    assert.ok(m(['https://issuer.example', 'sub'], { string_match: { exact: 'alice' } })(r));
    assert.ok(!m(['https://issuer.example', 'groups'], { string_match: { exact: 'admin' } })(r), 'a list is not a string');
    assert.ok(m(['https://issuer.example', 'groups'], { list_match: { one_of: { string_match: { exact: 'admin' } } } })(r));
    assert.ok(!m(['https://issuer.example', 'groups'], { list_match: { one_of: { string_match: { exact: 'ops' } } } })(r));
    assert.ok(m(['https://issuer.example', 'admin'], { bool_match: true })(r));
    assert.ok(m(['https://issuer.example', 'n'], { double_match: { range: { start: 1, end: 5 } } })(r));
    assert.ok(m(['https://issuer.example', 'nope'], { present_match: false })(r));
    assert.ok(m(['other', 'sub'], { string_match: { exact: 'alice' } }, true)(r));
    assert.ok(!m(['https://issuer.example', 'sub'], { string_match: { exact: 'alice' } })(req()), 'no metadata: no match');
  });

  test('unsupported and malformed matchers are ConfigErrors', () => {
    assert.throws(() => perm({ uri_template: {} }), ConfigError);
    assert.throws(() => perm({ any: true, header: { name: 'x' } }), /exactly one/);
    assert.throws(() => prin({ filter_state: {} }), /not supported/);
    assert.throws(() => perm({ and_rules: { rules: [] } }), /must not be empty/);
    assert.throws(() => prin({ direct_remote_ip: { address_prefix: 'nope', prefix_len: 8 } }), /not an IP/);
    assert.throws(() => prin({ direct_remote_ip: { address_prefix: '10.0.0.0', prefix_len: 33 } }), /\[0, 32\]/);
    assert.throws(() => perm({ header: { name: 'x', string_match: { safe_regex: { regex: '(a)\\1' } } } }), /RE2/);
    assert.throws(() => compilePermission({ header: { name: 'x', present_match: true } }, 'p', 'network'), /network RBAC/);
    assert.throws(() => compileRbacRules({ action: 'ALLOW', policies: { p: { permissions: [{ any: true }], principals: [{ any: true }], condition: {} } } }, 'r', 'http'), /CEL/);
    assert.throws(() => compileRbacConfig({ matcher: {} }, 'f', 'http'), /unified matcher/);
    assert.throws(() => compileRbacConfig({ rules: { action: 'ALLOW', audit_logging_options: {} } }, 'f', 'http'), /audit loggers/);
    assert.throws(() => compileRbacConfig({ rules: { action: 'NOPE' } }, 'f', 'http'), /unsupported value/);
  });
});

describe('RBAC semantics', () => {
  const admin = policy([{ url_path: { path: { prefix: '/admin' } } }], [{ any: true }]);
  const fromShop = policy([{ any: true }], [{ authenticated: { principal_name: { prefix: 'spiffe://weft.test/ns/shop/' } } }]);

  test('ALLOW: a matching policy allows; no match denies 403 with flag RBAC; an ALLOW with no policies denies all', () => {
    const f = filter({ action: 'ALLOW', policies: { 'ns.shop.allow[rule-0]': fromShop } });
    assert.equal(f.decodeHeaders(req({ connection: mtls('spiffe://weft.test/ns/shop/sa/web') }), undefined), undefined);
    assert.deepEqual(f.decodeHeaders(req({ connection: mtls('spiffe://weft.test/ns/ops/sa/x') }), undefined), { flag: 'RBAC', status: 403 });
    assert.deepEqual(filter({ action: 'ALLOW', policies: {} }).decodeHeaders(req(), undefined), { flag: 'RBAC', status: 403 });
    assert.equal(filter({ action: 'DENY', policies: {} }).decodeHeaders(req(), undefined), undefined, 'DENY with no policy denies nothing');
    assert.equal(filter(undefined).decodeHeaders(req(), undefined), undefined, 'no rules: no enforcement');
  });

  test('DENY before ALLOW (the chain order): a denied request never reaches the ALLOW filter; the log names the policy', () => {
    decisions.length = 0;
    const deny = filter({ action: 'DENY', policies: { 'ns.shop.no-admin[rule-0]': admin } });
    const allow = filter({ action: 'ALLOW', policies: { 'ns.shop.all[rule-0]': policy([{ any: true }], [{ any: true }]) } });
    const run = (r: FilterRequest) => deny.decodeHeaders(r, undefined) ?? allow.decodeHeaders(r, undefined);
    assert.deepEqual(run(req({ path: '/admin/x' })), { flag: 'RBAC', status: 403 });
    assert.equal(run(req({ path: '/items' })), undefined);
    assert.equal(decisions.length, 1);
    assert.deepEqual({ ...decisions[0], remote: undefined }, { decision: 'denied', action: 'DENY', policy: 'ns.shop.no-admin[rule-0]', filter: 'http', principal: undefined, remote: undefined, method: 'GET', path: '/admin/x' });
    const r = req({ path: '/admin' });
    run(r);
    assert.equal(r.metadata.get('envoy.filters.http.rbac')?.enforced_effective_policy_id, 'ns.shop.no-admin[rule-0]');
  });

  test('the deciding policy is the first by name, as in Envoy\'s sorted policy map', () => {
    const e = compileRbacRules({ action: 'DENY', policies: { 'b[rule-0]': admin, 'a[rule-1]': admin } }, 'r', 'http');
    assert.equal(evaluateRbac(e, req({ path: '/admin' })).policy, 'a[rule-1]');
  });

  test('LOG (AUDIT) never denies: it marks envoy.common.access_log_hint and logs the policy', () => {
    decisions.length = 0;
    const f = filter({ action: 'LOG', policies: { 'ns.shop.audit[rule-0]': policy([{ header: { name: ':method', string_match: { exact: 'DELETE' } } }], [{ any: true }]) } });
    const r = req({ method: 'DELETE' });
    assert.equal(f.decodeHeaders(r, undefined), undefined);
    assert.equal(r.metadata.get('envoy.common')?.access_log_hint, true);
    assert.equal(decisions[0]?.decision, 'logged');
    assert.equal(decisions[0]?.policy, 'ns.shop.audit[rule-0]');
    const g = req({ method: 'GET' });
    assert.equal(f.decodeHeaders(g, undefined), undefined);
    assert.equal(g.metadata.size, 0, 'no match: no mark, no log');
    assert.equal(decisions.length, 1);
  });

  test('shadow_rules are recorded, never enforced', () => {
    const f = filter(undefined, { shadow_rules: { action: 'DENY', policies: { 'ns.x.deny[rule-0]': admin } }, shadow_rules_stat_prefix: 'istio_dry_run_' });
    const r = req({ path: '/admin' });
    assert.equal(f.decodeHeaders(r, undefined), undefined);
    assert.deepEqual(r.metadata.get('envoy.filters.http.rbac'), { istio_dry_run_shadow_effective_policy_id: 'ns.x.deny[rule-0]', istio_dry_run_shadow_engine_result: 'denied' });
  });

  test('RBACPerRoute replaces the listener config; without rbac the filter is off on that route', () => {
    const f = filter({ action: 'ALLOW', policies: {} });
    const open = rbacFactory.compilePerRoute({ '@type': 'x', rbac: { rules: { action: 'ALLOW', policies: { all: policy([{ any: true }], [{ any: true }]) } } } }, 'r', DEPS);
    assert.equal(f.decodeHeaders(req(), open), undefined);
    assert.equal(f.decodeHeaders(req(), rbacFactory.compilePerRoute({}, 'r', DEPS)), undefined);
    assert.deepEqual(f.decodeHeaders(req(), undefined), { flag: 'RBAC', status: 403 });
    assert.throws(() => rbacFactory.compilePerRoute({ rules: {} }, 'r', DEPS), /not supported/);
  });

  test('destination_ip matches the connection\'s local address; an unknown one fails closed', () => {
    decisions.length = 0;
    const p = policy([{ destination_ip: { address_prefix: '10.0.0.0', prefix_len: 8 } }], [{ any: true }]);
    const deny = filter({ action: 'DENY', policies: { d: p } });
    assert.equal(deny.decodeHeaders(req({ connection: { localAddress: '127.0.0.1' } }), undefined), undefined);
    assert.deepEqual(deny.decodeHeaders(req({ connection: { localAddress: '10.1.2.3' } }), undefined), { flag: 'RBAC', status: 403 });
    decisions.length = 0;
    assert.deepEqual(deny.decodeHeaders(req({ connection: { localAddress: '' } }), undefined), { flag: 'RBAC', status: 403 });
    assert.equal(decisions[0]?.decision, 'unevaluable');
  });
});

describe('the control plane\'s golden inbound listener (shop/catalog)', () => {
  // Tests run from dist/; the golden is read from the source tree.
  const golden = JSON.parse(readFileSync(fileURLToPath(new URL('../../../../../src/control/xds/testdata/inbound-shop-catalog.golden.json', import.meta.url)), 'utf8')) as { listener: { filter_chains: { name: string; filters: { typed_config: { http_filters?: { name: string; typed_config: Record<string, unknown> }[] } }[] }[] } };
  const chain = golden.listener.filter_chains.find((c) => c.filters[0]?.typed_config.http_filters !== undefined)!;
  const filters = chain.filters[0]!.typed_config.http_filters!.filter((f) => f.name.startsWith('envoy.filters.http.rbac'));
  const compiled = filters.map((f) => ({ name: f.name, filter: rbacFactory.create(f.typed_config, f.name, DEPS) }));
  const web = 'spiffe://weft.test/ns/shop/sa/web-sa';
  const iss = 'https://issuer.example';
  const decide = (o: Over): string => {
    const r = req(o);
    for (const f of compiled) if (f.filter.decodeHeaders(r, undefined) !== undefined) return `deny:${f.name.split('.').pop()}`;
    return 'allow';
  };

  test('the filters are AUDIT, DENY, ALLOW in that order', () => {
    assert.deepEqual(compiled.map((f) => f.name), ['envoy.filters.http.rbac.audit', 'envoy.filters.http.rbac.deny', 'envoy.filters.http.rbac.allow']);
  });

  const cases: [string, Over, string][] = [
    ['web-sa GET /items', { connection: mtls(web), path: '/items' }, 'allow'],
    ['web-sa HEAD /items/7', { connection: mtls(web), method: 'HEAD', path: '/items/7' }, 'allow'],
    ['web-sa POST /items', { connection: mtls(web), method: 'POST', path: '/items' }, 'deny:allow'],
    ['ops prefix GET /items', { connection: mtls('spiffe://weft.test/ns/ops/sa/any'), path: '/items' }, 'allow'],
    ['outsider GET /items', { connection: mtls('spiffe://weft.test/ns/other/sa/x'), path: '/items' }, 'deny:allow'],
    ['plaintext GET /items', { path: '/items' }, 'deny:allow'],
    ['outsider /admin/ (DENY: not from ns shop)', { connection: mtls('spiffe://weft.test/ns/ops/sa/any'), path: '/admin/x' }, 'deny:deny'],
    ['x-block: yes', { connection: mtls(web), path: '/items', headers: { 'x-block': 'yes' } }, 'deny:deny'],
    ['JWT group admin (string claim)', { path: '/anything', metadata: new Map([['envoy.filters.http.jwt_authn', { [iss]: { groups: 'admin' } }]]) }, 'allow'],
    ['JWT groups [dev, admin] (list claim)', { path: '/anything', metadata: new Map([['envoy.filters.http.jwt_authn', { [iss]: { groups: ['dev', 'admin'] } }]]) }, 'allow'],
    ['JWT groups [dev]', { path: '/anything', metadata: new Map([['envoy.filters.http.jwt_authn', { [iss]: { groups: ['dev'] } }]]) }, 'deny:allow'],
  ];
  for (const [name, o, want] of cases) {
    test(`${name} → ${want}`, () => assert.equal(decide(o), want));
  }

  test('the network RBAC of a TCP golden chain compiles and decides on the peer principal', async () => {
    const { compileNetworkRbac, evaluateNetworkRbac } = await import('./network.js');
    const bank = JSON.parse(readFileSync(fileURLToPath(new URL('../../../../../src/control/xds/testdata/inbound-bank-ledger.golden.json', import.meta.url)), 'utf8')) as typeof golden;
    const tcpChain = bank.listener.filter_chains.find((c) => c.name === 'inbound|9000|tls')!;
    const f = tcpChain.filters[0] as unknown as { name: string; typed_config: Record<string, unknown> };
    const n = [compileNetworkRbac(f.name, f.typed_config, 'f')];
    const conn = (id: string | undefined): DownstreamConnection => ({ remoteAddress: '10.0.0.9', remotePort: 1, localAddress: '10.0.0.1', localPort: 15006, tls: true, peerPrincipal: id, serverName: undefined });
    assert.equal(evaluateNetworkRbac(n, conn('spiffe://cluster.local/ns/shop/sa/web')).allowed, true);
    assert.deepEqual(evaluateNetworkRbac(n, conn('spiffe://cluster.local/ns/bank/sa/web')), { allowed: false, policy: undefined, filter: 'envoy.filters.network.rbac.allow' });
    assert.throws(() => compileNetworkRbac('x', { rules: { action: 'ALLOW' } }, 'f'), /stat_prefix: is required/);
    assert.throws(() => compileNetworkRbac('x', { stat_prefix: 's', delay_deny: '1s' }, 'f'), /delayed denials/);
  });
});
