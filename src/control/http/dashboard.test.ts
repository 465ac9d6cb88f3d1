import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kinds } from '../../api/registry.js';
import { isWeftError } from '../../lib/errors.js';
import { createLogger } from '../../lib/log.js';
import { openFileStore } from '../../store/file/file-store.js';
import type { ConfigStore } from '../../store/types.js';
import { startCaService, type CaService } from '../identity/ca-service.js';
import { dashboardCapabilities, DASHBOARD_CSP, type CertificatesView } from './dashboard.js';
import { resolveRoute, splitTarget } from './router.js';
import { createApiServer, type ApiServer } from './server.js';

const log = createLogger('test', 'silent');
let dir: string;
let store: ConfigStore;
let server: ApiServer;
let base: string;
let ca: CaService;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-dashboard-'));
  store = await openFileStore(join(dir, 'store'), { logger: log });
  ca = await startCaService({ dataDir: join(dir, 'data'), store, log });
  server = createApiServer({ store, adminToken: 'tok', log, ca });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  ca.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

const route = (url: string) => resolveRoute(splitTarget(url).segments, kinds);

test('dashboard paths: /, /ui, /ui/, known assets, the merged watch; nothing else under /ui', () => {
  assert.deepEqual(route('/'), { type: 'ui-redirect' });
  assert.deepEqual(route('/ui'), { type: 'ui-redirect' });
  assert.deepEqual(route('/ui/'), { type: 'ui-asset', asset: 'index.html' });
  assert.deepEqual(route('/ui/?x=1'), { type: 'ui-asset', asset: 'index.html' });
  assert.deepEqual(route('/ui/app.js'), { type: 'ui-asset', asset: 'app.js' });
  assert.deepEqual(route('/ui/style.css'), { type: 'ui-asset', asset: 'style.css' });
  assert.deepEqual(route('/ui/api/watch'), { type: 'ui-watch' });
  for (const url of ['/ui/page.js', '/ui/index.html', '/ui/app.js.map', '/ui/api', '/ui/x/app.js', '/ui/model.test.js', '/ui/api/watch/x']) {
    assert.throws(() => route(url), (e) => isWeftError(e, 'WEFT_ERR_NOT_FOUND'), url);
  }
  for (const url of ['/ui//', '/ui/%2e%2e/admin-token', '/ui/../healthz', '/ui/app.js/']) {
    assert.throws(() => route(url), (e) => isWeftError(e, 'WEFT_ERR_BAD_REQUEST'), url);
  }
});

test('capabilities: no /stats/services, the telemetry API, certificates only with a CA', () => {
  assert.deepEqual(dashboardCapabilities(kinds), { stats: false, telemetry: true, certificates: false });
  assert.deepEqual(dashboardCapabilities(kinds, ca), { stats: false, telemetry: true, certificates: true });
});

test('vendor libraries are served from the installed packages, and only those', async () => {
  assert.deepEqual(route('/ui/vendor/cytoscape.min.js'), { type: 'ui-asset', asset: 'vendor/cytoscape.min.js' });
  for (const url of ['/ui/vendor/lodash.js', '/ui/vendor/package.json', '/ui/vendor']) {
    assert.throws(() => route(url), (e) => isWeftError(e, 'WEFT_ERR_NOT_FOUND'), url);
  }
  for (const [path, type, marker] of [['/ui/vendor/cytoscape.min.js', /^text\/javascript/, 'cytoscape'], ['/ui/vendor/uplot.min.js', /^text\/javascript/, 'uPlot'], ['/ui/vendor/uplot.min.css', /^text\/css/, '.uplot']] as const) {
    const r = await fetch(`${base}${path}`);
    assert.equal(r.status, 200, path);
    assert.match(r.headers.get('content-type') ?? '', type, path);
    assert.equal(r.headers.get('content-security-policy'), DASHBOARD_CSP);
    assert.ok((await r.text()).includes(marker), path);
  }
});

test('/ui/api/certificates: the CA roots and signer with their validity; a read like any other', async () => {
  assert.equal((await fetch(`${base}/ui/api/certificates`, { headers: { authorization: 'Bearer wrong' } })).status, 403);
  const r = await fetch(`${base}/ui/api/certificates`);
  assert.equal(r.status, 200);
  const body = (await r.json()) as CertificatesView;
  assert.equal(body.trustDomain, 'cluster.local');
  assert.equal(body.roots.length, 1);
  const root = body.roots[0]!;
  assert.match(root.subject, /CN=Weft Root CA cluster\.local/);
  assert.equal(root.ca, true);
  assert.ok(Date.parse(root.notAfter) > Date.now() && Date.parse(root.notBefore) <= Date.now());
  assert.match(root.fingerprintSha256, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  assert.equal(body.signer.ca, true);
  assert.deepEqual(body.workload, { issuedTotal: 0, live: 0 });
});

test('assets carry their content type and the CSP; HEAD has no body', async () => {
  for (const [path, type] of [['/ui/', /^text\/html/], ['/ui/style.css', /^text\/css/], ['/ui/app.js', /^text\/javascript/], ['/ui/model.js', /^text\/javascript/]] as const) {
    const r = await fetch(`${base}${path}`);
    assert.equal(r.status, 200, path);
    assert.match(r.headers.get('content-type') ?? '', type, path);
    assert.equal(r.headers.get('content-security-policy'), DASHBOARD_CSP);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    assert.ok((await r.text()).length > 100);
  }
  const head = await fetch(`${base}/ui/app.js`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(await head.text(), '');
  const post = await fetch(`${base}/ui/`, { method: 'POST' });
  assert.equal(post.status, 400);
  assert.equal(post.headers.get('allow'), 'GET, HEAD');
});

test('the merged watch: every kind, then a BOOKMARK; live changes follow; a bad token is refused', async () => {
  await store.put({ apiVersion: 'weft.dev/v1alpha1', kind: 'Service', metadata: { name: 'a', namespace: 'default' }, spec: { ports: [{ port: 80, protocol: 'http', targetPort: 80 }] } });
  await store.put({ apiVersion: 'weft.dev/v1alpha1', kind: 'Mesh', metadata: { name: 'default' }, spec: {} });
  assert.equal((await fetch(`${base}/ui/api/watch`, { headers: { authorization: 'Bearer wrong' } })).status, 403);
  const ac = new AbortController();
  const res = await fetch(`${base}/ui/api/watch`, { signal: ac.signal });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/x-ndjson');
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  const lines: { type: string; object: { kind?: string; metadata: { name?: string; resourceVersion?: string } } }[] = [];
  const until = async (pred: () => boolean): Promise<void> => {
    while (!pred()) {
      const { value, done } = await reader.read();
      if (done) throw new Error('stream ended');
      buf += value;
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        lines.push(JSON.parse(buf.slice(0, nl)) as (typeof lines)[number]);
        buf = buf.slice(nl + 1);
      }
    }
  };
  await until(() => lines.some((l) => l.type === 'BOOKMARK'));
  assert.deepEqual(lines.map((l) => `${l.type} ${l.object.kind ?? ''}`).sort(), ['ADDED Mesh', 'ADDED Service', 'BOOKMARK '].sort());
  await store.put({ apiVersion: 'weft.dev/v1alpha1', kind: 'Workload', metadata: { name: 'w', namespace: 'default' }, spec: { address: '10.0.0.1' } });
  await until(() => lines.some((l) => l.object.kind === 'Workload'));
  assert.equal(lines.at(-1)?.type, 'ADDED');
  ac.abort();
  // Resuming from the bookmark replays only what came after it.
  const rv = lines.find((l) => l.type === 'BOOKMARK')!.object.metadata.resourceVersion!;
  const ac2 = new AbortController();
  const again = await fetch(`${base}/ui/api/watch?resourceVersion=${rv}`, { signal: ac2.signal });
  const r2 = again.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  while (!text.includes('"kind":"Workload"')) {
    const { value, done } = await r2.read();
    if (done) break;
    text += value;
  }
  ac2.abort();
  const kinds2 = text.trim().split('\n').map((l) => JSON.parse(l) as { type: string; object: { kind?: string } }).filter((l) => l.type !== 'BOOKMARK').map((l) => l.object.kind);
  assert.deepEqual(kinds2, ['Workload']);
});

test('/ui/api/policy/NS/NAME: effective settings with their source; 404 for no such service', async () => {
  await store.put({ apiVersion: 'weft.dev/v1alpha1', kind: 'Service', metadata: { name: 'pol', namespace: 'default' }, spec: { ports: [{ name: 'http', port: 80, protocol: 'http', targetPort: 80 }] } });
  await store.put({ apiVersion: 'weft.dev/v1alpha1', kind: 'BackendPolicy', metadata: { name: 'pol-retry', namespace: 'default' }, spec: { targetRefs: [{ kind: 'Service', name: 'pol' }], retry: { attempts: 2 } } });
  assert.deepEqual(route('/ui/api/policy/default/pol'), { type: 'ui-policy', namespace: 'default', name: 'pol' });
  const r = await fetch(`${base}/ui/api/policy/default/pol`);
  assert.equal(r.status, 200);
  const body = (await r.json()) as { blocks: { title: string; lines: { setting: string; value?: { attempts?: number }; source: string }[] }[] };
  assert.deepEqual(body.blocks.map((b) => b.title), ['Port http (80)']);
  const retry = body.blocks[0]!.lines.find((l) => l.setting === 'retry')!;
  assert.equal(retry.value?.attempts, 2);
  assert.equal(retry.source, 'backendpolicy/default/pol-retry via targetRefs[0] (Service)');
  assert.equal(body.blocks[0]!.lines.find((l) => l.setting === 'timeouts')!.source, 'default');
  assert.equal((await fetch(`${base}/ui/api/policy/default/nope`)).status, 404);
  assert.equal((await fetch(`${base}/ui/api/policy/default/pol`, { headers: { authorization: 'Bearer wrong' } })).status, 403);
});
