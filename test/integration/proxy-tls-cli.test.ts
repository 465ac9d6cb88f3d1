// `weft proxy --inbound-addr 127.0.0.1:0` (real CLI process, 2 workers): a free port is
// picked before xDS, sent as node metadata WEFT_INBOUND_PORT, and the control plane's
// TLS `inbound` listener (pushed over xDS) binds there and serves mTLS in the workers.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLUSTER, LISTENER } from '../../src/xds/type-urls.js';
import { startFakeAds, type FakeAds } from '../fixtures/proxy/fake-ads.js';
import { listener, startUpstream, staticCluster, waitFor, type Upstream } from '../fixtures/proxy/helpers.js';
import { clientCertArgs, curl, downstreamTls, httpChain, inboundListener, makeCa, type Issued, type TestCa } from './proxy-tls-helpers.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

let dir: string;
let ads: FakeAds;
let app: Upstream;
let ca: TestCa;
let client: Issued;
let child: ChildProcess | undefined;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-proxy-tls-cli-'));
  ca = await makeCa(dir, 'weft.test');
  const server = await ca.issue('shop', 'catalog');
  client = await ca.issue('shop', 'web');
  app = await startUpstream('catalog');
  ads = await startFakeAds();
  // Durations as proto messages: the fake server serializes to the wire.
  ads.set(CLUSTER, [staticCluster('app', [app.port], { connect_timeout: { seconds: 1 } })], '1');
  ads.set(LISTENER, [
    listener('outbound', { route_config: { name: 'o', virtual_hosts: [{ name: 'o', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] } }, 15001),
    // The address the control plane gives (0.0.0.0:15006) is replaced by --inbound-addr.
    { ...inboundListener([httpChain('inbound|80|tls', 'app', { transport_protocol: 'tls' }, downstreamTls(server, ca.bundlePem))]), address: { socket_address: { address: '0.0.0.0', port_value: 15006 } } },
  ], '1');
});

after(async () => {
  if (child !== undefined && child.exitCode === null) {
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  await ads?.close();
  await app?.close();
  await rm(dir, { recursive: true, force: true });
});

test('--inbound-addr 127.0.0.1:0: the real port goes to the control plane and serves mTLS', async () => {
  child = spawn(process.execPath, [CLI, 'proxy', '--xds', ads.address, '--service', 'catalog', '--namespace', 'shop', '--concurrency', '2',
    '--admin-addr', '127.0.0.1:0', '--outbound-addr', '127.0.0.1:0', '--inbound-addr', '127.0.0.1:0', '--drain-timeout', '0', '--log-level', 'silent'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const m = await waitFor('inbound line', () => /^weft proxy inbound: 127\.0\.0\.1:(\d+)/m.exec(out), 30_000).catch((e: unknown) => { throw new Error(`${String(e)}\nstdout: ${out}\nstderr: ${err}`); });
  const port = Number(m[1]);
  assert.ok(port > 0 && port !== 15006);
  const first = ads.requests.find((r) => r.node !== undefined);
  assert.equal(first?.node?.metadata?.fields?.WEFT_INBOUND_PORT?.stringValue, String(port));
  const r = await curl([...clientCertArgs(client), `https://127.0.0.1:${port}/items`]);
  assert.equal(r.status, 200, r.stderr);
  const none = await curl(['-k', `https://127.0.0.1:${port}/items`]);
  assert.equal(none.status, 0, 'no client certificate: refused');
});
