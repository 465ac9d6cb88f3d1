import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDocuments } from '../parse.js';
import { validateDocuments } from '../validate.js';
import { formatFieldError } from '../../lib/errors.js';
import { checkPrincipal, type SecurityPolicySpec } from './securitypolicy.js';

function check(yaml: string) {
  const p = parseDocuments(yaml, 'sp.yaml');
  assert.deepEqual(p.errors, []);
  return validateDocuments(p.docs, { exists: (k) => k.kind === 'Service' && k.name === 'catalog' });
}

const head = (name: string, ns = 'shop') => `apiVersion: weft.dev/v1alpha1
kind: SecurityPolicy
metadata: {name: ${name}, namespace: ${ns}}
spec:
`;

const jwks = JSON.stringify({ keys: [{ kty: 'EC', crv: 'P-256', x: 'a', y: 'b' }] });

test('a SecurityPolicy with mTLS, authorization and JWT is accepted', () => {
  const r = check(`${head('full')}  targetRefs: [{kind: Service, name: catalog}]
  mtls: {mode: STRICT}
  authorization:
    action: ALLOW
    rules:
    - from:
      - principals: ["spiffe://cluster.local/ns/shop/sa/web", "spiffe://cluster.local/ns/ops/*"]
        namespaces: [shop]
      - serviceAccounts: [web, ops/admin]
        services: [web]
      to:
      - methods: [GET]
        paths: [/items, "/items/*", "*.json"]
        ports: [8080]
        headers: [{name: x-env, values: [prod]}]
      when:
      - {key: "request.auth.claims[iss]", values: ["https://issuer.example"]}
      - {key: "request.headers[x-tenant]", notValues: [blocked]}
  jwt:
    providers:
    - name: example
      issuer: https://issuer.example
      audiences: [catalog]
      jwks: {inline: '${jwks}'}
    - name: remote
      issuer: https://other.example
      jwks: {uri: "https://other.example/.well-known/jwks.json"}
      fromHeaders: [{name: x-token}]
---
${head('ns-wide')}  mtls: {mode: PERMISSIVE}
---
${head('ns-target')}  targetRefs: [{kind: Namespace, name: shop}]
  authorization: {action: DENY, rules: [{from: [{notNamespaces: [shop]}]}]}
`);
  assert.deepEqual(r.errors.map(formatFieldError), []);
  const s = r.resources[0]?.spec as SecurityPolicySpec;
  assert.equal(s.jwt?.required, false);
  assert.equal(s.jwt?.providers[0]?.forwardOriginalToken, false);
});

test('mistakes are reported with their paths', () => {
  const r = check(`${head('bad')}  targetRefs: [{kind: Namespace, name: other}, {kind: Service, name: gone, group: apps}]
  authorization:
    action: PERMIT
---
${head('bad2')}  authorization:
    rules:
    - from:
      - principals: ["cluster.local/ns/shop/sa/web", "spiffe://cluster.local/*/sa/web", "*web*"]
        serviceAccounts: ["a/b/c"]
      - {}
      to:
      - paths: [/a/*/b, items]
      when:
      - {key: "request.body", values: [x]}
      - {key: "source.ip"}
  jwt:
    providers:
    - {name: a, issuer: x, jwks: {inline: "not json"}}
    - {name: a, issuer: x, jwks: {inline: '{"keys": []}'}}
    - {name: b, issuer: x, jwks: {}}
    - {name: c, issuer: x, jwks: {uri: "ftp://keys"}}
---
${head('bad3')}  {}
`);
  assert.deepEqual(r.errors.map(formatFieldError).sort(), [
    'sp.yaml#1 spec.authorization.action: must be one of "ALLOW", "DENY", "AUDIT"',
    'sp.yaml#2 spec.authorization.rules[0].from[0].principals[0]: must be a SPIFFE ID (spiffe://<trust domain>/ns/<ns>/sa/<sa>) or use "*"',
    'sp.yaml#2 spec.authorization.rules[0].from[0].principals[1]: may hold "*" only at the start or the end',
    'sp.yaml#2 spec.authorization.rules[0].from[0].principals[2]: may hold "*" at the start or the end, not both',
    'sp.yaml#2 spec.authorization.rules[0].from[0].serviceAccounts[0]: "a/b/c" is not a service account (name or namespace/name)',
    'sp.yaml#2 spec.authorization.rules[0].from[1]: is empty; leave out `from` to match any source',
    'sp.yaml#2 spec.authorization.rules[0].to[0].paths[0]: may hold "*" only at the start or the end',
    'sp.yaml#2 spec.authorization.rules[0].to[0].paths[1]: must start with "/" (or "*")',
    'sp.yaml#2 spec.authorization.rules[0].when[0].key: "request.body" is not a known key (request.headers[h], request.auth.claims[c], request.auth.principal|audiences|presenter, source.ip|namespace|principal, destination.ip|port)',
    'sp.yaml#2 spec.authorization.rules[0].when[1]: give values, notValues or both',
    'sp.yaml#2 spec.jwt.providers[0].jwks.inline: is not JSON: Unexpected token \'o\', "not json" is not valid JSON',
    'sp.yaml#2 spec.jwt.providers[1].jwks.inline: must be a JWKS: an object with a non-empty "keys" array',
    'sp.yaml#2 spec.jwt.providers[1].name: provider "a" is listed twice',
    'sp.yaml#2 spec.jwt.providers[2].jwks: give exactly one of inline or uri',
    'sp.yaml#2 spec.jwt.providers[3].jwks.uri: "ftp://keys" is not an http(s) URL',
    'sp.yaml#3 spec: sets nothing: give at least one of mtls, authorization, jwt',
  ]);
  const r2 = check(`${head('targets')}  targetRefs: [{kind: Namespace, name: other}, {kind: Service, name: gone, group: apps}]
  mtls: {mode: DISABLE}
`);
  assert.deepEqual(r2.errors.map(formatFieldError).sort(), [
    'sp.yaml#1 spec.targetRefs[0].name: a policy may target only its own namespace ("shop")',
    'sp.yaml#1 spec.targetRefs[1].group: must be "" or weft.dev for a Service',
  ]);
  const r3 = check(`${head('refs', 'default')}  targetRefs: [{kind: Service, name: gone}]
  mtls: {mode: DISABLE}
`);
  assert.deepEqual(r3.errors.map(formatFieldError), ['sp.yaml#1 spec.targetRefs[0]: refers to Service/default/gone, which does not exist']);
});

test('principal forms', () => {
  for (const ok of ['*', 'spiffe://cluster.local/ns/a/sa/b', 'spiffe://cluster.local/ns/a/*', '*/sa/web']) assert.equal(checkPrincipal(ok), undefined, ok);
  for (const bad of ['spiffe://Cluster/ns', 'spiffe://td/a//b', 'web', 'spiffe://td/*/x']) assert.notEqual(checkPrincipal(bad), undefined, bad);
});
