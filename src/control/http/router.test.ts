import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kinds } from '../../api/registry.js';
import { isWeftError } from '../../lib/errors.js';
import { resolveRoute, splitTarget, type Route } from './router.js';

function route(url: string): Route {
  return resolveRoute(splitTarget(url).segments, kinds);
}

function summary(r: Route): string {
  switch (r.type) {
    case 'collection': return `collection ${r.kind.kind} ${r.namespace ?? '*'}`;
    case 'object': return `object ${r.kind.kind} ${r.namespace}/${r.name}`;
    default: return r.type;
  }
}

test('maps the documented paths', () => {
  assert.equal(summary(route('/healthz')), 'healthz');
  assert.equal(summary(route('/version')), 'version');
  assert.equal(summary(route('/apis')), 'discovery');
  assert.equal(summary(route('/apply?dryRun=All')), 'apply');
  assert.equal(summary(route('/apis/weft.dev/v1alpha1/services')), 'collection Service *');
  assert.equal(summary(route('/apis/weft.dev/v1alpha1/namespaces/shop/services')), 'collection Service shop');
  assert.equal(summary(route('/apis/weft.dev/v1alpha1/namespaces/shop/services/cart')), 'object Service shop/cart');
  assert.equal(summary(route('/apis/gateway.networking.k8s.io/v1beta1/namespaces/default/httproutes/r')), 'object HTTPRoute default/r');
});

test('keeps the query', () => {
  const { query } = splitTarget('/apis/weft.dev/v1alpha1/services?watch=true&labelSelector=a%3Db');
  assert.equal(query.get('watch'), 'true');
  assert.equal(query.get('labelSelector'), 'a=b');
});

test('refuses suspicious paths with WEFT_ERR_BAD_REQUEST before routing', () => {
  for (const url of [
    '/apis/weft.dev/v1alpha1/namespaces/../services',
    '/apis/weft.dev/v1alpha1/namespaces/./services',
    '/apis/weft.dev/v1alpha1/namespaces/default/services%2Fx',
    '/apis/weft.dev/v1alpha1/namespaces/default/%2e%2e',
    '/apis//weft.dev',
    '/apis/weft.dev/',
    '/healthz/',
    '/apis/weft.dev/v1alpha1/namespaces/default/services/a:b',
    '/apis/weft.dev/v1alpha1/namespaces/default/services/ä',
    '/apis\\weft.dev',
    'http://evil.example/apis',
    '*',
  ]) {
    assert.throws(() => route(url), (e) => isWeftError(e, 'WEFT_ERR_BAD_REQUEST'), url);
  }
});

test('unknown paths, kinds and versions are WEFT_ERR_NOT_FOUND', () => {
  for (const url of [
    // '/' is the dashboard's redirect (dashboard.test.ts).
    '/nope',
    '/apis/weft.dev',
    '/apis/weft.dev/v1alpha1',
    '/apis/weft.dev/v1alpha1/gizmos',
    '/apis/weft.dev/v2/services',
    '/apis/gateway.networking.k8s.io/v1alpha1/services',
    '/apis/weft.dev/v1alpha1/namespaces/default/services/a/b',
    '/apis/weft.dev/v1alpha1/namespaces/default',
    // a namespaced kind without its namespace
    '/apis/weft.dev/v1alpha1/services/catalog',
  ]) {
    assert.throws(() => route(url), (e) => isWeftError(e, 'WEFT_ERR_NOT_FOUND'), url);
  }
});

test('xDS client paths: node ids are percent-decoded once, and still cannot name another path', () => {
  const id = 'sidecar~127.0.0.1~catalog-1.default~default.svc.cluster.local';
  assert.deepEqual(route(`/xds/clients/${id}/config`), { type: 'xds-client-config', nodeId: id });
  assert.deepEqual(route(`/xds/clients/${encodeURIComponent('web~[::1]:80')}/config?type=clusters`), { type: 'xds-client-config', nodeId: 'web~[::1]:80' });
  assert.deepEqual(route('/xds/clients'), { type: 'xds-clients' });
  assert.deepEqual(route('/metrics'), { type: 'metrics' });
  for (const url of ['/xds/clients/%2e%2e/config', '/xds/clients/a%2Fb/config', '/xds/clients/a%5Cb/config', '/xds/clients/%00/config', '/xds/clients/%ff/config', '/xds/clients/a:b/config', '/xds/clients/%2e/config']) {
    assert.throws(() => route(url), (e) => isWeftError(e, 'WEFT_ERR_BAD_REQUEST'), url);
  }
  // Only that one segment is lenient.
  assert.throws(() => route('/apis/weft.dev/v1alpha1/namespaces/default/services/a~b'), (e) => isWeftError(e, 'WEFT_ERR_BAD_REQUEST'));
  assert.throws(() => route('/xds/clients%7E/x/config'), (e) => isWeftError(e, 'WEFT_ERR_BAD_REQUEST'));
  for (const url of ['/xds', '/xds/clients/a', '/xds/clients/a/dump', '/xds/clients/a/config/x', '/metrics/x']) {
    assert.throws(() => route(url), (e) => isWeftError(e, 'WEFT_ERR_NOT_FOUND'), url);
  }
});
