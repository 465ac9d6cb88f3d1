// startProxy from an Envoy-style YAML bootstrap file.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { call, startUpstream, type Upstream } from '../fixtures/proxy/helpers.js';

// Tests run from dist/; the fixture is read from the source tree.
const FIXTURE = fileURLToPath(new URL('../../../test/fixtures/proxy/bootstrap.yaml', import.meta.url));

let dir: string;
let up: Upstream;
let proxy: Proxy | undefined;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-proxy-bootstrap-'));
  up = await startUpstream('catalog');
});

after(async () => {
  await proxy?.close();
  await up?.close();
  await rm(dir, { recursive: true, force: true });
});

test('a YAML bootstrap file starts listeners, clusters and the admin server', async () => {
  const path = join(dir, 'bootstrap.yaml');
  await writeFile(path, (await readFile(FIXTURE, 'utf8')).replaceAll('UPSTREAM_PORT', String(up.port)));
  proxy = await startProxy({ bootstrap: path, logLevel: 'silent' });
  assert.match(proxy.adminUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
  const r = await call(proxy.listenerPort('outbound')!, '/items', { headers: { host: 'catalog.default' } });
  assert.equal(r.status, 200);
  assert.equal(r.json<{ name: string }>().name, 'catalog');
  assert.equal(proxy.snapshot().clusters.get('catalog')!.config.connectTimeoutMs, 500);
  assert.equal((await fetch(`${proxy.adminUrl}/ready`)).status, 200);
});

test('a bootstrap that cannot be honoured fails startProxy with the place named', async () => {
  await assert.rejects(
    startProxy({ logLevel: 'silent', adminAddr: '127.0.0.1:0', bootstrap: { static_resources: { clusters: [{ name: 'x', type: 'ORIGINAL_DST' }] } } }),
    /Cluster "x": type: ORIGINAL_DST clusters are not supported yet/,
  );
});
