// The control plane's HTTP API end to end: a real control plane (file store,
// admin token, node:http server on port 0) in this process, driven over HTTP.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane, type ControlPlane } from '../../src/control/control-plane.js';
import type { Resource } from '../../src/api/types.js';
import type { Watch, WatchEvent, WatchOptions } from '../../src/store/types.js';

const SVC = '/apis/weft.dev/v1alpha1/namespaces/default/services';

let dir: string;
let cp: ControlPlane;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-http-api-'));
  cp = await startControlPlane({ dataDir: join(dir, 'data'), apiAddr: '127.0.0.1:0', logLevel: 'silent' });
});

after(async () => {
  await cp?.close();
  await rm(dir, { recursive: true, force: true });
});

interface Call {
  method?: string;
  body?: unknown;
  /** Raw text body; sent as is with `contentType`. */
  text?: string;
  contentType?: string;
  token?: string | null;
}

/** One API call; writes carry the admin token unless `token` says otherwise. */
async function call(path: string, c: Call = {}): Promise<{ status: number; json: Record<string, unknown>; text: string }> {
  const method = c.method ?? 'GET';
  const headers: Record<string, string> = {};
  const token = c.token === undefined ? (method === 'GET' ? null : cp.adminToken) : c.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (c.text !== undefined) {
    body = c.text;
    headers['content-type'] = c.contentType ?? 'application/yaml';
  } else if (c.body !== undefined) {
    body = JSON.stringify(c.body);
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(cp.apiUrl + path, { method, headers, body });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON (healthz)
  }
  return { status: res.status, json, text };
}

/** A request whose path is sent byte for byte (fetch would normalise `..`). */
function rawGet(path: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const url = new URL(cp.apiUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method: 'GET' }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end();
  });
}

function service(name: string, port = 80, extra: Record<string, unknown> = {}): Resource {
  return {
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'Service',
    metadata: { name, ...extra },
    spec: { selector: { app: name }, ports: [{ port }] },
  };
}

function items(json: Record<string, unknown>): Resource[] {
  return json.items as Resource[];
}

describe('basics', () => {
  test('healthz and version answer without a token', async () => {
    const h = await call('/healthz');
    assert.equal(h.status, 200);
    assert.equal(h.text.trim(), 'ok');
    const v = await call('/version');
    assert.equal(v.status, 200);
    assert.equal(typeof v.json.version, 'string');
  });

  test('discovery lists every kind with its REST names', async () => {
    const r = await call('/apis');
    assert.equal(r.status, 200);
    const kinds = r.json.kinds as { kind: string; group: string; plural: string; namespaced: boolean; versions: string[] }[];
    const svc = kinds.find((k) => k.kind === 'Service');
    assert.deepEqual(
      { group: svc?.group, plural: svc?.plural, namespaced: svc?.namespaced, versions: svc?.versions },
      { group: 'weft.dev', plural: 'services', namespaced: true, versions: ['v1alpha1'] },
    );
  });

  test('the admin token is in DATA_DIR/admin-token with mode 0600', async () => {
    const st = await stat(join(dir, 'data', 'admin-token'));
    assert.equal(st.mode & 0o777, 0o600);
    assert.match(cp.adminToken, /^[A-Za-z0-9_-]{43}$/);
  });
});

describe('auth', () => {
  test('a write without a token is 401, with a wrong one 403, and changes nothing', async () => {
    const none = await call(SVC, { method: 'POST', body: service('auth-a'), token: null });
    assert.equal(none.status, 401);
    assert.equal(none.json.reason, 'WEFT_ERR_UNAUTHORIZED');
    const wrong = await call(SVC, { method: 'POST', body: service('auth-a'), token: 'not-the-token' });
    assert.equal(wrong.status, 403);
    assert.equal(wrong.json.reason, 'WEFT_ERR_FORBIDDEN');
    const apply = await call('/apply', { method: 'POST', body: service('auth-a'), token: null });
    assert.equal(apply.status, 401);
    assert.equal((await call(`${SVC}/auth-a`)).status, 404);
  });

  test('reads from loopback need no token; a wrong token on a read is still 403', async () => {
    assert.equal((await call(SVC, { token: null })).status, 200);
    assert.equal((await call(SVC, { token: cp.adminToken })).status, 200);
    assert.equal((await call(SVC, { token: 'nope' })).status, 403);
  });
});

describe('CRUD', () => {
  test('create, get, list in a namespace and across namespaces', async () => {
    const created = await call(SVC, { method: 'POST', body: service('catalog') });
    assert.equal(created.status, 201, created.text);
    const meta = (created.json as unknown as Resource).metadata;
    assert.equal(meta.namespace, 'default');
    assert.match(meta.resourceVersion ?? '', /^\d+$/);
    assert.equal(meta.generation, 1);

    const again = await call(SVC, { method: 'POST', body: service('catalog') });
    assert.equal(again.status, 409);
    assert.equal(again.json.reason, 'WEFT_ERR_CONFLICT');

    const other = await call('/apis/weft.dev/v1alpha1/namespaces/shop/services', { method: 'POST', text: 'apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: cart}\nspec: {ports: [{port: 8080}]}\n' });
    assert.equal(other.status, 201, other.text);
    assert.equal((other.json as unknown as Resource).metadata.namespace, 'shop');

    const got = await call(`${SVC}/catalog`);
    assert.equal(got.status, 200);
    assert.deepEqual((got.json as unknown as Resource).spec, { selector: { app: 'catalog' }, ports: [{ port: 80, targetPort: 80, protocol: 'http' }] });

    const list = await call(SVC);
    assert.equal(list.json.kind, 'ServiceList');
    assert.equal(list.json.apiVersion, 'weft.dev/v1alpha1');
    assert.match((list.json.metadata as { resourceVersion: string }).resourceVersion, /^\d+$/);
    assert.ok(items(list.json).every((r) => r.metadata.namespace === 'default'));
    assert.ok(items(list.json).some((r) => r.metadata.name === 'catalog'));

    const all = await call('/apis/weft.dev/v1alpha1/services');
    const names = items(all.json).map((r) => `${r.metadata.namespace}/${r.metadata.name}`);
    assert.ok(names.includes('default/catalog') && names.includes('shop/cart'), names.join(' '));

    const filtered = await call('/apis/weft.dev/v1alpha1/services?namespace=shop');
    assert.deepEqual(items(filtered.json).map((r) => r.metadata.name), ['cart']);
  });

  test('labelSelector filters lists', async () => {
    assert.equal((await call(SVC, { method: 'POST', body: service('labelled', 80, { labels: { tier: 'web' } }) })).status, 201);
    const r = await call(`${SVC}?labelSelector=tier%3Dweb`);
    assert.deepEqual(items(r.json).map((o) => o.metadata.name), ['labelled']);
    assert.equal((await call(`${SVC}?labelSelector=a%3D%3D%3Db`)).status, 400);
  });

  test('PUT creates (201), replaces (200), and with a stale resourceVersion is 409 and changes nothing', async () => {
    const c = await call(`${SVC}/inventory`, { method: 'PUT', body: service('inventory', 80) });
    assert.equal(c.status, 201, c.text);
    const rv1 = (c.json as unknown as Resource).metadata.resourceVersion;

    const u = await call(`${SVC}/inventory`, { method: 'PUT', body: service('inventory', 81, { resourceVersion: rv1 }) });
    assert.equal(u.status, 200, u.text);
    const rv2 = (u.json as unknown as Resource).metadata.resourceVersion;
    assert.notEqual(rv2, rv1);

    const stale = await call(`${SVC}/inventory`, { method: 'PUT', body: service('inventory', 82, { resourceVersion: rv1 }) });
    assert.equal(stale.status, 409);
    assert.equal(stale.json.reason, 'WEFT_ERR_CONFLICT');
    const now = (await call(`${SVC}/inventory`)).json as unknown as Resource;
    assert.equal(now.metadata.resourceVersion, rv2);
    assert.equal((now.spec as { ports: { port: number }[] }).ports[0]?.port, 81);
  });

  test('the body may not contradict the path', async () => {
    const kind = await call(`${SVC}/x`, { method: 'PUT', body: { ...service('x'), kind: 'Mesh' } });
    assert.equal(kind.status, 400);
    const name = await call(`${SVC}/x`, { method: 'PUT', body: service('y') });
    assert.equal(name.status, 400);
    assert.equal((name.json.details as { path: string }[])[0]?.path, 'metadata.name');
    const ns = await call(`${SVC}/x`, { method: 'PUT', body: service('x', 80, { namespace: 'shop' }) });
    assert.equal(ns.status, 400);
    assert.equal((ns.json.details as { path: string }[])[0]?.path, 'metadata.namespace');
    const invalid = await call(`${SVC}/x`, { method: 'PUT', body: service('x', 70000) });
    assert.equal(invalid.status, 400);
    assert.equal(invalid.json.reason, 'WEFT_ERR_INVALID');
    assert.deepEqual(invalid.json.details, [{ source: 'request', document: 1, path: 'spec.ports[0].port', message: 'must be ≤ 65535' }]);
    assert.equal((await call(`${SVC}/x`)).status, 404);
  });

  test('malformed bodies are 400, never a crash', async () => {
    for (const c of [
      { text: '{"kind": ', contentType: 'application/json' },
      { text: 'a: [1, 2', contentType: 'application/yaml' },
      { text: '42', contentType: 'application/json' },
      { text: 'null', contentType: 'application/json' },
      { text: '', contentType: 'application/yaml' },
      { text: 'kind: Service\n---\nkind: Service\n', contentType: 'application/yaml' },
      { text: '{}', contentType: 'text/plain' },
    ]) {
      const r = await call(SVC, { method: 'POST', ...c });
      assert.equal(r.status, 400, `${JSON.stringify(c)} → ${r.status} ${r.text}`);
      assert.equal(r.json.kind, 'Status');
    }
    assert.equal((await call('/healthz')).status, 200);
  });

  test('dryRun=All validates and stores nothing', async () => {
    const before = await cp.store.revision();
    const post = await call(`${SVC}?dryRun=All`, { method: 'POST', body: service('dry') });
    assert.equal(post.status, 201);
    const put = await call(`${SVC}/dry?dryRun=All`, { method: 'PUT', body: service('dry') });
    assert.equal(put.status, 201);
    const apply = await call('/apply?dryRun=All', { method: 'POST', body: service('dry') });
    assert.equal(apply.status, 200);
    assert.deepEqual(apply.json, { items: [{ kind: 'Service', namespace: 'default', name: 'dry', action: 'created' }], dryRun: true });
    const bad = await call(`${SVC}?dryRun=All`, { method: 'POST', body: service('dry', 0) });
    assert.equal(bad.status, 400);
    assert.equal((await call(`${SVC}/dry`)).status, 404);
    assert.equal(await cp.store.revision(), before);
    assert.equal((await call(`${SVC}?dryRun=Some`, { method: 'POST', body: service('dry') })).status, 400);
  });

  test('DELETE with a resourceVersion precondition, then 404', async () => {
    const c = await call(SVC, { method: 'POST', body: service('doomed') });
    const rv = (c.json as unknown as Resource).metadata.resourceVersion ?? '';
    const dry = await call(`${SVC}/doomed?dryRun=All`, { method: 'DELETE' });
    assert.equal(dry.status, 200);
    assert.equal((await call(`${SVC}/doomed`)).status, 200);
    const stale = await call(`${SVC}/doomed?resourceVersion=1`, { method: 'DELETE' });
    assert.equal(stale.status, 409);
    const d = await call(`${SVC}/doomed?resourceVersion=${rv}`, { method: 'DELETE' });
    assert.equal(d.status, 200, d.text);
    assert.equal((d.json as unknown as Resource).metadata.name, 'doomed');
    assert.equal((await call(`${SVC}/doomed`)).status, 404);
    assert.equal((await call(`${SVC}/doomed`, { method: 'DELETE' })).status, 404);
  });
});

describe('apply', () => {
  test('creates, configures and leaves unchanged objects, reporting each', async () => {
    const yaml = (port: number) => `apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: apply-a}
spec: {ports: [{port: 80}]}
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: apply-b, namespace: shop}
spec: {ports: [{port: ${port}}]}
`;
    const first = await call('/apply', { method: 'POST', text: yaml(80) });
    assert.equal(first.status, 200, first.text);
    assert.deepEqual(first.json, {
      items: [
        { kind: 'Service', namespace: 'default', name: 'apply-a', action: 'created' },
        { kind: 'Service', namespace: 'shop', name: 'apply-b', action: 'created' },
      ],
      dryRun: false,
    });
    const rev = await cp.store.revision();
    const second = await call('/apply', { method: 'POST', text: yaml(81) });
    assert.deepEqual((second.json.items as { action: string }[]).map((i) => i.action), ['unchanged', 'configured']);
    const third = await call('/apply', { method: 'POST', text: yaml(81) });
    assert.deepEqual((third.json.items as { action: string }[]).map((i) => i.action), ['unchanged', 'unchanged']);
    assert.equal(await cp.store.revision(), rev + 1, 'only the changed object was written');
  });

  test('?namespace= is the default namespace for objects that name none', async () => {
    const r = await call('/apply?namespace=staging', { method: 'POST', body: service('ns-default') });
    assert.equal(r.status, 200, r.text);
    assert.equal((await call('/apis/weft.dev/v1alpha1/namespaces/staging/services/ns-default')).status, 200);
  });

  test('one invalid document: 400 listing every error with document and path, nothing stored', async () => {
    const before = await cp.store.revision();
    const r = await call('/apply', {
      method: 'POST',
      text: `apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: ok-one}
spec: {ports: [{port: 80}]}
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: Bad_Name}
spec: {ports: [{port: 70000}]}
---
apiVersion: weft.dev/v1alpha1
kind: Nope
metadata: {name: x}
spec: {}
`,
    });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.reason, 'WEFT_ERR_INVALID');
    const details = r.json.details as { source: string; document: number; path: string; message: string }[];
    const where = details.map((d) => `${d.source}#${d.document} ${d.path}`).sort();
    assert.deepEqual(where, ['request#2 metadata.name', 'request#2 spec.ports[0].port', 'request#3 kind']);
    assert.equal((await call(`${SVC}/ok-one`)).status, 404);
    assert.equal(await cp.store.revision(), before);
  });

  test('a JSON List body is applied item by item', async () => {
    const r = await call('/apply', { method: 'POST', body: { apiVersion: 'v1', kind: 'List', items: [service('list-a'), service('list-b')] } });
    assert.equal(r.status, 200, r.text);
    assert.equal((r.json.items as unknown[]).length, 2);
  });
});

describe('limits and bad requests', () => {
  test('a body over 1 MiB is 413', async () => {
    const big = `# ${'x'.repeat(1024 * 1024 + 10)}\n`;
    const r = await call('/apply', { method: 'POST', text: big });
    assert.equal(r.status, 413);
    assert.equal(r.json.reason, 'WEFT_ERR_TOO_LARGE');
    assert.equal((await call('/healthz')).status, 200);
  });

  test('paths with .., empty segments, encoded slashes or odd characters are 400', async () => {
    for (const p of [
      '/apis/weft.dev/v1alpha1/namespaces/../services',
      '/apis/weft.dev/v1alpha1/namespaces/default/services%2Fcatalog',
      '/apis/weft.dev/v1alpha1/namespaces/default/services/%2E%2E',
      '/apis/weft.dev/v1alpha1/namespaces//services',
      '/apis/weft.dev/v1alpha1/namespaces/default/services/',
      '/apis/weft.dev/v1alpha1/namespaces/default/services/a b',
      '/apis/weft.dev/v1alpha1/namespaces/default/services/a;b',
    ]) {
      const r = await rawGet(p.replace(' ', '%20'));
      assert.equal(r.status, 400, p);
      assert.equal(r.json.reason, 'WEFT_ERR_BAD_REQUEST', p);
    }
  });

  test('unknown kinds and paths are 404', async () => {
    const r = await call('/apis/weft.dev/v1alpha1/namespaces/default/gizmos');
    assert.equal(r.status, 404);
    assert.equal(r.json.kind, 'Status');
    assert.equal((await call('/apis/weft.dev/v9/namespaces/default/services')).status, 404);
    assert.equal((await call('/nothing/here')).status, 404);
  });

  test('a method a path does not serve is 400 with Allow', async () => {
    const res = await fetch(`${cp.apiUrl}/apply`);
    assert.equal(res.status, 400);
    assert.equal(res.headers.get('allow'), 'POST');
    await res.text();
  });
});

describe('watch', () => {
  /** Counts store watches the API opens and closes, and tells when one closes. */
  function trackWatches() {
    const store = cp.store;
    const original = store.watch.bind(store);
    const state = { open: 0, closed: 0, onClose: () => {} };
    store.watch = (opts: WatchOptions, onEvent: (e: WatchEvent) => void): Watch => {
      const w = original(opts, onEvent);
      state.open++;
      let done = false;
      return {
        close() {
          if (done) return;
          done = true;
          state.open--;
          state.closed++;
          w.close();
          state.onClose();
        },
      };
    };
    return { state, restore: () => (store.watch = original) };
  }

  type Line = { type: string; object: Resource };

  /** Reads ndjson lines off a fetch body. */
  function lineReader(body: ReadableStream<Uint8Array>) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    return async function next(): Promise<Line> {
      for (;;) {
        const nl = buffer.indexOf('\n');
        if (nl !== -1) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          return JSON.parse(line) as Line;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error('stream ended');
        buffer += decoder.decode(value, { stream: true });
      }
    };
  }

  test('streams current objects, a BOOKMARK, then changes; releases the watch on disconnect', async () => {
    const tracked = trackWatches();
    try {
      await call(SVC, { method: 'POST', body: service('watched') });
      const abort = new AbortController();
      const res = await fetch(`${cp.apiUrl}${SVC}?watch=true`, { signal: abort.signal });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/x-ndjson');
      const next = lineReader(res.body!);
      let line = await next();
      const initial: string[] = [];
      while (line.type === 'ADDED') {
        initial.push(line.object.metadata.name);
        line = await next();
      }
      assert.ok(initial.includes('watched'));
      assert.equal(line.type, 'BOOKMARK');
      assert.match(line.object.metadata.resourceVersion ?? '', /^\d+$/);
      assert.equal(tracked.state.open, 1);

      const applied = await call('/apply', { method: 'POST', body: service('watched', 8080) });
      assert.equal(applied.status, 200);
      const change = await next();
      assert.equal(change.type, 'MODIFIED');
      assert.equal(change.object.metadata.name, 'watched');
      assert.equal((change.object.spec as { ports: { port: number }[] }).ports[0]?.port, 8080);

      const released = new Promise<void>((resolve) => (tracked.state.onClose = resolve));
      abort.abort();
      await released;
      assert.equal(tracked.state.open, 0);
    } finally {
      tracked.restore();
    }
  });

  test('with an old resourceVersion the stream replays every change after it', async () => {
    const c = await call(SVC, { method: 'POST', body: service('replayed') });
    const rv = (c.json as unknown as Resource).metadata.resourceVersion ?? '';
    await call(`${SVC}/replayed`, { method: 'PUT', body: service('replayed', 81) });
    await call(`${SVC}/replayed`, { method: 'DELETE' });
    const abort = new AbortController();
    const res = await fetch(`${cp.apiUrl}${SVC}?watch=true&resourceVersion=${rv}`, { signal: abort.signal });
    assert.equal(res.status, 200);
    const next = lineReader(res.body!);
    const seen: string[] = [];
    for (;;) {
      const line = await next();
      if (line.type === 'BOOKMARK') continue;
      if (line.object.metadata.name !== 'replayed') continue;
      seen.push(line.type);
      if (line.type === 'DELETED') break;
    }
    assert.deepEqual(seen, ['MODIFIED', 'DELETED']);
    abort.abort();
  });
});

describe('restart', () => {
  test('reuses the token, keeps objects (even ones that no longer validate), and answers 410 for a watch from before the restart', async () => {
    const dataDir = join(dir, 'restart');
    const first = await startControlPlane({ dataDir, apiAddr: '127.0.0.1:0', logLevel: 'silent' });
    let token: string;
    try {
      token = first.adminToken;
      const res = await fetch(`${first.apiUrl}/apply`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(service('kept')) });
      assert.equal(res.status, 200);
      await res.text();
      // Written behind the API's back (as an older Weft might have): must not stop a start.
      await first.store.put({ ...service('stale', 99999), metadata: { name: 'stale', namespace: 'default' } });
    } finally {
      await first.close();
    }
    const second = await startControlPlane({ dataDir, apiAddr: '127.0.0.1:0', logLevel: 'silent' });
    try {
      assert.equal(second.adminToken, token);
      const got = await fetch(`${second.apiUrl}${SVC}/kept`);
      assert.equal(got.status, 200);
      await got.text();
      const stale = await fetch(`${second.apiUrl}${SVC}/stale`);
      assert.equal(stale.status, 200);
      await stale.text();
      const gone = await fetch(`${second.apiUrl}${SVC}?watch=true&resourceVersion=0`);
      assert.equal(gone.status, 410);
      assert.equal(((await gone.json()) as { reason: string }).reason, 'WEFT_ERR_GONE');
    } finally {
      await second.close();
    }
  });
});

const ROUTES = '/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes';
const routeYaml = (backend: string) => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews-split}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews}]
  rules:
  - backendRefs:
    - {name: ${backend}, port: 9080}
`;

describe('HTTPRoute', () => {
  test('a route and the Services it names apply together in one body', async () => {
    const svc = (name: string) => `apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: ${name}}
spec: {ports: [{name: http, port: 9080}]}
`;
    const r = await call('/apply', { method: 'POST', text: [routeYaml('reviews-v1'), svc('reviews'), svc('reviews-v1')].join('---\n') });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual((r.json.items as { kind: string; action: string }[]).map((i) => `${i.kind}:${i.action}`), ['HTTPRoute:created', 'Service:created', 'Service:created']);
    const got = await call(`${ROUTES}/reviews-split`);
    assert.equal(got.status, 200);
    assert.equal(got.json.apiVersion, 'gateway.networking.k8s.io/v1');
    // Any served version reads the same objects, returned in the first version.
    const beta = await call('/apis/gateway.networking.k8s.io/v1beta1/namespaces/default/httproutes/reviews-split');
    assert.equal(beta.status, 200);
    assert.equal(beta.json.apiVersion, 'gateway.networking.k8s.io/v1');
  });

  test('a dangling reference is 400 naming the field, and nothing is stored', async () => {
    const before = await cp.store.revision();
    const viaApply = await call('/apply', { method: 'POST', text: routeYaml('no-such-service').replace('reviews-split', 'dangling') });
    assert.equal(viaApply.status, 400, viaApply.text);
    const d = (viaApply.json.details as { path: string; message: string }[])[0];
    assert.match(d?.path ?? '', /^spec\.rules\[0\]\.backendRefs\[0\]/);
    assert.match(d?.message ?? '', /does not exist/);
    const viaPut = await call(`${ROUTES}/dangling`, { method: 'PUT', text: routeYaml('no-such-service').replace('reviews-split', 'dangling') });
    assert.equal(viaPut.status, 400, viaPut.text);
    assert.equal(await cp.store.revision(), before);
  });
});

describe('cluster-scoped kinds (Mesh)', () => {
  const MESHES = '/apis/weft.dev/v1alpha1/meshes';
  const mesh = (extra: Record<string, unknown> = {}) => ({ apiVersion: 'weft.dev/v1alpha1', kind: 'Mesh', metadata: { name: 'default', ...extra }, spec: {} });

  test('live at paths without namespaces/{ns}', async () => {
    const put = await call(`${MESHES}/default`, { method: 'PUT', body: mesh() });
    assert.equal(put.status, 201, put.text);
    const got = await call(`${MESHES}/default`);
    assert.equal(got.status, 200);
    assert.equal((got.json as unknown as Resource).metadata.namespace, undefined);
    assert.equal((got.json as unknown as { spec: { trustDomain: string } }).spec.trustDomain, 'cluster.local');
    assert.deepEqual(items((await call(MESHES)).json).map((m) => m.metadata.name), ['default']);
    assert.equal((await call(`/apis/weft.dev/v1alpha1/namespaces/default/meshes/default`)).status, 404);
    const withNs = await call(`${MESHES}/default`, { method: 'PUT', body: mesh({ namespace: 'default' }) });
    assert.equal(withNs.status, 400);
    const applied = await call('/apply', { method: 'POST', body: mesh() });
    assert.deepEqual(applied.json.items, [{ kind: 'Mesh', name: 'default', action: 'unchanged' }]);
    assert.equal((await call(`${MESHES}/default`, { method: 'DELETE' })).status, 200);
  });
});
