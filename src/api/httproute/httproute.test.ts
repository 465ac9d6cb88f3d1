import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDocuments } from '../parse.js';
import { validateDocuments } from '../validate.js';
import { formatFieldError } from '../../lib/errors.js';
import { keyString, type ResourceKey } from '../types.js';
import { checkRe2 } from '../gateway/common.js';
import type { HTTPRouteSpec } from './httproute.js';

const services = new Set(['Service/default/reviews', 'Service/default/reviews-v1', 'Service/default/reviews-v2', 'Service/default/mirror', 'Service/shop/catalog']);

function check(yaml: string, exists: (k: ResourceKey) => boolean = (k) => services.has(keyString(k))) {
  const p = parseDocuments(yaml, 'routes.yaml');
  assert.deepEqual(p.errors, []);
  return validateDocuments(p.docs, { exists });
}

function lines(r: ReturnType<typeof check>): string[] {
  return r.errors.map(formatFieldError).sort();
}

// As written in Istio's and Linkerd's GAMMA guides.
const gamma = (apiVersion: string) => `apiVersion: gateway.networking.k8s.io/${apiVersion}
kind: HTTPRoute
metadata:
  name: reviews
spec:
  parentRefs:
  - group: ""
    kind: Service
    name: reviews
    port: 9080
  rules:
  - matches:
    - headers:
      - name: end-user
        value: jason
    backendRefs:
    - name: reviews-v2
      port: 9080
    timeouts:
      request: 10s
  - backendRefs:
    - name: reviews-v1
      port: 9080
      weight: 90
    - name: reviews-v2
      port: 9080
      weight: 10
`;

for (const version of ['v1', 'v1beta1']) {
  test(`a GAMMA HTTPRoute written for Istio/Linkerd applies unchanged (${version})`, () => {
    const r = check(gamma(version));
    assert.deepEqual(lines(r), []);
    const route = r.resources[0];
    assert.equal(route?.apiVersion, 'gateway.networking.k8s.io/v1');
    const spec = route?.spec as HTTPRouteSpec;
    assert.deepEqual(spec.rules[0]?.matches, [{ path: { type: 'PathPrefix', value: '/' }, headers: [{ type: 'Exact', name: 'end-user', value: 'jason' }] }]);
    assert.deepEqual(spec.rules[0]?.backendRefs?.[0], { group: '', kind: 'Service', name: 'reviews-v2', namespace: 'default', port: 9080, weight: 1 });
    assert.deepEqual(spec.rules[1]?.matches, [{ path: { type: 'PathPrefix', value: '/' } }]);
    assert.deepEqual(spec.rules[1]?.backendRefs?.map((b) => b.weight), [90, 10]);
  });
}

test('Linkerd docs spell the core group "core": accepted for parents and backends', () => {
  const r = check(`apiVersion: gateway.networking.k8s.io/v1beta1
kind: HTTPRoute
metadata:
  name: reviews-split
spec:
  parentRefs:
  - name: reviews
    kind: Service
    group: core
    port: 9080
  rules:
  - matches:
    - path:
        type: PathPrefix
        value: /
    backendRefs:
    - name: reviews-v1
      port: 9080
      weight: 50
    - name: reviews-v2
      group: core
      kind: Service
      port: 9080
      weight: 50
`);
  assert.deepEqual(lines(r), []);
});

test('Linkerd style: parentRef without group, weft.dev group, and omitted rules get upstream defaults', () => {
  const r = check(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: a}
spec:
  parentRefs: [{kind: Service, name: reviews}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: b}
spec:
  parentRefs: [{kind: Service, group: weft.dev, name: reviews, port: 9080}]
  rules:
  - matches: [{path: {value: /api}}, {path: {type: Exact}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {scheme: https}
`);
  assert.deepEqual(lines(r), []);
  const [a, b] = r.resources.map((x) => x.spec as HTTPRouteSpec);
  assert.deepEqual(a?.parentRefs?.[0], { group: '', kind: 'Service', name: 'reviews' });
  assert.deepEqual(a?.rules, [{ matches: [{ path: { type: 'PathPrefix', value: '/' } }] }]);
  assert.deepEqual(b?.rules[0]?.matches.map((m) => m.path), [{ type: 'PathPrefix', value: '/api' }, { type: 'Exact', value: '/' }]);
  assert.equal(b?.rules[0]?.filters?.[0]?.requestRedirect?.statusCode, 302);
});

test('every mistake is reported with its document and path', () => {
  const r = check(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ok}
spec:
  parentRefs: [{kind: Service, name: reviews}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bad}
spec:
  parentRefs: [{kind: Service, name: reviews}]
  rules:
  - backendRefs:
    - {name: reviews-v1, port: 9080}
    - {name: reviews-v2, port: 70000, weight: -1}
    timeouts: {request: 10 seconds}
`);
  assert.deepEqual(r.resources, []);
  assert.deepEqual(lines(r), [
    'routes.yaml#2 spec.rules[0].backendRefs[1].port: must be ≤ 65535',
    'routes.yaml#2 spec.rules[0].backendRefs[1].weight: must be ≥ 0',
    'routes.yaml#2 spec.rules[0].timeouts.request: must match ^([0-9]{1,5}(h|m|s|ms)){1,4}$',
  ]);
});

test('semantic checks: paths, regexes, headers, filters, timeouts, backends', () => {
  const r = check(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bad}
spec:
  parentRefs: [{kind: Service, name: reviews}]
  rules:
  - name: same
    matches:
    - path: {type: PathPrefix, value: api}
      headers:
      - {name: X-User, value: a}
      - {name: x-user, value: b}
      - {name: x-re, type: RegularExpression, value: "(?=a)b"}
      queryParams:
      - {name: q, type: RegularExpression, value: "([a-z]"}
    - path: {type: RegularExpression, value: "/(a)\\\\1"}
    - path: {type: Exact, value: "/a/../b"}
    filters:
    - type: RequestRedirect
      requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}
    - type: URLRewrite
      urlRewrite: {hostname: example.com}
    - type: RequestHeaderModifier
      responseHeaderModifier: {set: [{name: a, value: b}]}
    backendRefs:
    - {name: reviews-v1}
    - {kind: ConfigMap, name: x, port: 1}
    timeouts: {request: 5s, backendRequest: 10s}
  - name: same
    backendRefs: [{name: reviews-v1, port: 80}]
    filters:
    - type: RequestMirror
      requestMirror: {backendRef: {name: mirror, port: 80}, percent: 10, fraction: {numerator: 1}}
    - type: ExtensionRef
      extensionRef: {group: example.com, kind: Filter, name: f}
`);
  assert.deepEqual(lines(r), [
    'routes.yaml#1 spec.rules[0].backendRefs[0].port: is required for a Service backend',
    'routes.yaml#1 spec.rules[0].backendRefs[1]: core/ConfigMap is not a backend Weft knows: use kind Service (group "" or weft.dev)',
    'routes.yaml#1 spec.rules[0].filters: a RequestRedirect filter must not be used together with backendRefs',
    'routes.yaml#1 spec.rules[0].filters: may specify either RequestRedirect or URLRewrite, but not both',
    'routes.yaml#1 spec.rules[0].filters[0].requestRedirect.path.type: ReplacePrefixMatch needs exactly one match in the rule, of type PathPrefix',
    'routes.yaml#1 spec.rules[0].filters[2].requestHeaderModifier: is required when type is RequestHeaderModifier',
    'routes.yaml#1 spec.rules[0].filters[2].responseHeaderModifier: must not be set when type is RequestHeaderModifier',
    'routes.yaml#1 spec.rules[0].matches[0].headers[1].name: "x-user" is matched twice; a request has one value to compare',
    'routes.yaml#1 spec.rules[0].matches[0].headers[2].value: lookaround assertions are not supported (RE2)',
    'routes.yaml#1 spec.rules[0].matches[0].path.value: must be an absolute path starting with "/"',
    'routes.yaml#1 spec.rules[0].matches[0].queryParams[0].value: invalid regular expression: /([a-z]/: Unterminated group',
    'routes.yaml#1 spec.rules[0].matches[1].path.value: backreference \\1 is not supported (RE2)',
    'routes.yaml#1 spec.rules[0].matches[2].path.value: must not contain "/../"',
    'routes.yaml#1 spec.rules[0].timeouts.backendRequest: must not be longer than the request timeout (5s)',
    'routes.yaml#1 spec.rules[1].filters[0].requestMirror: only one of percent or fraction may be specified',
    'routes.yaml#1 spec.rules[1].filters[1]: ExtensionRef filters are not supported: Weft has no extension filters',
    'routes.yaml#1 spec.rules[1].name: "same" is already the name of rules[0]',
  ]);
});

test('parentRefs must name Services; header names must be tokens', () => {
  const r = check(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bad}
spec:
  parentRefs:
  - {name: my-gateway}
  - {group: gateway.networking.k8s.io, kind: Gateway, name: gw}
  - {kind: Service, name: reviews, port: 9080}
  - {kind: Service, group: "", name: reviews, port: 9080}
  rules:
  - matches: [{headers: [{name: "bad header", value: x}]}]
`);
  assert.deepEqual(lines(r), [
    'routes.yaml#1 spec.rules[0].matches[0].headers[0].name: must match ^[A-Za-z0-9!#$%&\'*+\\-.^_`|~]+$',
  ]);
  const r2 = check(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bad}
spec:
  parentRefs:
  - {name: my-gateway}
  - {group: gateway.networking.k8s.io, kind: Gateway, name: gw}
  - {kind: Service, name: reviews, port: 9080}
  - {kind: Service, group: "", name: reviews, port: 9080}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: none}
spec: {}
`);
  assert.deepEqual(lines(r2), [
    'routes.yaml#1 spec.parentRefs[0].kind: defaults to Gateway, which Weft does not implement: a mesh route attaches to a Service (kind: Service, group: "")',
    'routes.yaml#1 spec.parentRefs[1]: gateway.networking.k8s.io/Gateway is not supported: a mesh route attaches to a Service (kind: Service, group "" or weft.dev)',
    'routes.yaml#1 spec.parentRefs[3]: refers to the same parent as parentRefs[2]; give each a different sectionName or port',
    'routes.yaml#2 spec.parentRefs: a mesh route must name at least one parent Service (kind: Service, group: "")',
  ]);
});

test('references: parents, backends and mirrors must exist; backend namespace defaults to the route\'s', () => {
  const r = check(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: shop}
spec:
  parentRefs: [{kind: Service, name: catalog}, {kind: Service, name: reviews, namespace: default}]
  rules:
  - filters:
    - type: RequestMirror
      requestMirror: {backendRef: {name: shadow, port: 80}}
    backendRefs:
    - {name: catalog, port: 80}
    - {name: gone, port: 80}
    - {name: reviews-v1, namespace: default, port: 80}
`);
  assert.deepEqual(lines(r), [
    'routes.yaml#1 spec.rules[0].backendRefs[1]: refers to Service/shop/gone, which does not exist',
    'routes.yaml#1 spec.rules[0].filters[0].requestMirror.backendRef: refers to Service/shop/shadow, which does not exist',
  ]);
});

test('checkRe2 accepts RE2 spellings and rejects what RE2 rejects', () => {
  assert.equal(checkRe2('^/api/v[0-9]+/.*$'), undefined);
  assert.equal(checkRe2('(?i)^/API'), undefined);
  assert.equal(checkRe2('(?P<ver>v[0-9])'), undefined);
  assert.equal(checkRe2('[\\1]'), undefined);
  assert.match(checkRe2('(?<=a)b') ?? '', /lookaround/);
  assert.match(checkRe2('(?<n>a)\\k<n>') ?? '', /backreference/);
  assert.match(checkRe2('(?U)a+') ?? '', /ungreedy/);
});
