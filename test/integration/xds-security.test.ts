// Security in snapshots and mTLS xDS, with the built binary: `weft control`
// with an mTLS xDS listener, two `weft proxy` processes with join tokens that
// connect to it (--xds-tls) and announce their inbound port (--inbound-addr →
// node metadata WEFT_INBOUND_PORT); what the control plane sent them, and a
// request app → proxy web → mTLS → proxy catalog → app. Readiness is printed
// lines and polled state; no sleeps.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { adsServices } from '../../src/xds/protos.js';
import { killAll, runWeft, startWeft, stderrTails, until } from '../e2e/helpers/procs.js';

const CONTROL_READY = /^weft control ready: api=(\S+) xds=(\S+) data=(\S+)$/;
const PROXY_READY = /^weft proxy ready: admin=(\S+) outbound=(\S+) node=(\S+)$/m;
// Printed right after the ready line: waiting for it means both are out.
const INBOUND_LINE = /^weft proxy inbound: \S+:(\d+) /;

type Obj = Record<string, unknown>;
let tmp: string;
let dataDir: string;
let apiUrl: string;
let xdsTls: string;
let adminToken: string;
let failed = false;
const apps: Server[] = [];
let catalogApp: number;
let webApp: number;

/** An application on loopback that answers with its name (and the path). */
function startApp(name: string): Promise<number> {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`${name} ${req.url ?? ''}`);
  });
  apps.push(server);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

const MESH = `
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: catalog, namespace: shop }
spec:
  ports: [{ name: http, port: 80, targetPort: CATALOG_APP, protocol: http }]
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: web, namespace: shop }
spec:
  ports: [{ name: http, port: 80, targetPort: WEB_APP, protocol: http }]
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: legacy, namespace: shop }
spec:
  selector: { app: legacy }
  ports: [{ port: 80, targetPort: 9000, protocol: http }]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: { name: legacy-1, namespace: shop }
spec: { labels: { app: legacy }, address: 127.0.0.9, serviceAccount: legacy }
---
apiVersion: weft.dev/v1alpha1
kind: SecurityPolicy
metadata: { name: shop-strict, namespace: shop }
spec:
  mtls: { mode: STRICT }
`;

async function weft(args: readonly string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runWeft([...args, '--server', apiUrl, '--data-dir', dataDir], { home: tmp, ...(input !== undefined ? { input } : {}) });
}

interface Sidecar {
  nodeId: string;
  outbound: string;
  inboundPort: number;
}

async function startSidecar(service: string, port: number): Promise<Sidecar> {
  const token = await weft(['token', 'create', '--namespace', 'shop', '--service-account', service, '--ttl', '1h']);
  assert.equal(token.code, 0, token.stderr);
  const nodeId = `sidecar~127.0.0.1~${service}.shop`;
  const p = await startWeft(`weft proxy ${service}`, [
    'proxy', '--xds', xdsTls, '--xds-tls', '--token', token.stdout.trim(), '--api', apiUrl, '--service', service, '--namespace', 'shop',
    '--workload-port', String(port), '--node-id', nodeId, '--admin-addr', '127.0.0.1:0', '--outbound-addr', '127.0.0.1:0', '--inbound-addr', '127.0.0.1:0',
    '--concurrency', '1', '--log-level', 'warn',
  ], INBOUND_LINE, { home: tmp, timeoutMs: 30_000 });
  const ready = PROXY_READY.exec(p.run.stdout());
  assert.ok(ready, `no ready line in:\n${p.run.stdout()}`);
  return { nodeId, outbound: ready[2]!, inboundPort: Number(p.match[1]) };
}

async function sent(nodeId: string): Promise<Record<string, Obj[]>> {
  const res = await fetch(`${apiUrl}/xds/clients/${encodeURIComponent(nodeId)}/config`, { headers: { authorization: `Bearer ${adminToken}` } });
  if (res.status !== 200) throw new Error(`config of ${nodeId}: HTTP ${res.status}`);
  return (await res.json()) as Record<string, Obj[]>;
}

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'weft-xds-security-'));
  dataDir = join(tmp, 'data');
  const c = await startWeft('weft control', ['control', '--data-dir', dataDir, '--api-addr', '127.0.0.1:0', '--xds-addr', '127.0.0.1:0', '--xds-tls-addr', '127.0.0.1:0', '--log-level', 'warn'], CONTROL_READY, { home: tmp });
  apiUrl = c.match[1]!;
  const m = /^weft control xds-tls=(\S+)$/m.exec(c.run.stdout());
  assert.ok(m, `no xds-tls line in:\n${c.run.stdout()}`);
  xdsTls = m[1]!;
  adminToken = (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim();
  catalogApp = await startApp('catalog');
  webApp = await startApp('web');
  const applied = await weft(['apply', '-f', '-'], MESH.replace('CATALOG_APP', String(catalogApp)).replace('WEB_APP', String(webApp)));
  assert.equal(applied.code, 0, applied.stderr);
});

after(async () => {
  const tails = failed ? stderrTails() : '';
  if (tails !== '') process.stdout.write(tails.replace(/^/gm, '# ') + '\n');
  await killAll();
  for (const a of apps) a.close();
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
});

describe('security in snapshots over mTLS xDS', { concurrency: false }, () => {
  let web: string;
  let catalog: string;
  let webProxy: Sidecar;
  let catalogProxy: Sidecar;

  test('two proxies with join tokens connect over mTLS xDS and register', async () => {
    try {
      catalogProxy = await startSidecar('catalog', catalogApp);
      webProxy = await startSidecar('web', webApp);
      catalog = catalogProxy.nodeId;
      web = webProxy.nodeId;
      await until('both proxies on the control plane', 20_000, async () => {
        const s = await weft(['proxy-status', '-o', 'json']);
        return s.code === 0 && s.stdout.includes(catalog) && s.stdout.includes(web) ? true : undefined;
      });
    } catch (e) {
      failed = true;
      throw e;
    }
  });

  test("the client's cluster has an UpstreamTlsContext with the server's SPIFFE ID; EDS points at its inbound port", async () => {
    try {
      const cfg = await until('web config with catalog endpoints', 20_000, async () => {
        const c = await sent(web);
        return (c.endpoints ?? []).some((e) => e.cluster_name === 'outbound|80||catalog.shop.svc.cluster.local') ? c : undefined;
      });
      const cluster = cfg.clusters!.find((c) => c.name === 'outbound|80||catalog.shop.svc.cluster.local');
      assert.ok(cluster, 'catalog cluster');
      const ts = cluster.transport_socket as { typed_config: Obj } | undefined;
      assert.ok(ts, 'the catalog cluster carries TLS');
      assert.equal(ts.typed_config['@type'], 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext');
      assert.equal(ts.typed_config.sni, 'outbound_.80_._.catalog.shop.svc.cluster.local');
      assert.match(JSON.stringify(ts.typed_config), /"exact":"spiffe:\/\/cluster\.local\/ns\/shop\/sa\/catalog"/);
      const cla = cfg.endpoints!.find((e) => e.cluster_name === 'outbound|80||catalog.shop.svc.cluster.local')!;
      const ep = JSON.stringify(cla.endpoints);
      assert.match(ep, new RegExp(`"port_value":${catalogProxy.inboundPort}`), 'EDS points at the sidecar inbound port');
      assert.match(ep, /"tlsMode":"weft"/);
      // A hand-applied Workload has no sidecar: app port, plaintext.
      const legacy = cfg.clusters!.find((c) => c.name === 'outbound|80||legacy.shop.svc.cluster.local');
      assert.ok(legacy);
      assert.equal(legacy.transport_socket, undefined);
      assert.equal(legacy.transport_socket_matches, undefined);
    } catch (e) {
      failed = true;
      throw e;
    }
  });

  test('the server proxy gets its inbound listener (STRICT: TLS chains only, client certificate required)', async () => {
    try {
      const cfg = await sent(catalog);
      const inbound = cfg.listeners!.find((l) => l.name === 'inbound');
      assert.ok(inbound, `listeners sent: ${cfg.listeners!.map((l) => l.name).join(', ')}`);
      const chains = inbound.filter_chains as Obj[];
      assert.deepEqual(chains.map((c) => c.name), ['inbound|80|tls']);
      assert.match(JSON.stringify(chains[0]!.transport_socket), /"require_client_certificate":\{"value":true\}/);
      assert.ok(cfg.clusters!.some((c) => c.name === `inbound|${catalogApp}||`));
      // web's own view does not include catalog's inbound listener.
      const webCfg = await sent(web);
      const webInbound = webCfg.listeners!.find((l) => l.name === 'inbound');
      assert.ok(webInbound);
      assert.match(JSON.stringify(webInbound), /outbound_\.80_\._\.web\.shop/);
    } catch (e) {
      failed = true;
      throw e;
    }
  });

  test('a request app → proxy web → mTLS → proxy catalog → app succeeds', async () => {
    try {
      const body = await until('a request through both proxies', 20_000, async () => {
        const r = await runWeftCurl(webProxy.outbound, 'http://catalog.shop/items');
        return r.status === 200 ? r.body : undefined;
      }, 100);
      assert.equal(body, 'catalog /items');
    } catch (e) {
      failed = true;
      throw e;
    }
  });

  test("STRICT: a plaintext connection to catalog's inbound listener gets no answer", async () => {
    const reply = await new Promise<string>((resolve) => {
      const sock = connect(catalogProxy.inboundPort, '127.0.0.1', () => sock.write('GET /items HTTP/1.1\r\nHost: catalog.shop\r\nConnection: close\r\n\r\n'));
      let got = '';
      sock.setEncoding('utf8').on('data', (c: string) => (got += c));
      sock.on('error', () => resolve(`closed:${got}`));
      sock.on('close', () => resolve(`closed:${got}`));
      sock.setTimeout(10_000, () => sock.destroy());
    });
    assert.doesNotMatch(reply, /catalog \/items/, 'the app must not be reached in plaintext');
    assert.doesNotMatch(reply, /HTTP\/1\.1 200/);
  });

  test('proxy-config secrets lists names only', async () => {
    const r = await weft(['proxy-config', web, 'secrets', '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const list = JSON.parse(r.stdout) as Obj[];
    assert.deepEqual(list.map((x) => x.name), ['ROOTCA'], 'the proxy subscribed ROOTCA over ADS and got it; never `default`');
    assert.equal(list[0]!.trustedCaCertificates, 1);
    for (const s of list) {
      assert.equal(s.name, 'ROOTCA');
      assert.doesNotMatch(JSON.stringify(s), /BEGIN|inline_bytes|PRIVATE/);
    }
  });

  test('the mTLS xDS listener refuses a client without a mesh certificate', async () => {
    const bundle = await (await fetch(`${apiUrl}/ca/bundle`)).text().catch(() => '');
    const { AdsClient } = adsServices();
    const attempt = (creds: grpc.ChannelCredentials): Promise<string> =>
      new Promise((resolve) => {
        const client = new AdsClient(xdsTls, creds);
        const call = (client as unknown as { StreamAggregatedResources(): grpc.ClientDuplexStream<Obj, Obj> }).StreamAggregatedResources();
        const done = (what: string): void => {
          call.cancel();
          client.close();
          resolve(what);
        };
        call.on('data', () => done('data'));
        call.on('error', (e: grpc.ServiceError) => done(`error ${e.code}`));
        call.write({ node: { id: 'intruder', locality: {} }, type_url: 'type.googleapis.com/envoy.config.cluster.v3.Cluster', resource_names: [] });
      });
    // Server certificate trusted (when the bundle is readable), but no client certificate: the handshake fails.
    const noCert = await attempt(bundle.includes('BEGIN CERTIFICATE') ? grpc.credentials.createSsl(Buffer.from(bundle), null, null, { checkServerIdentity: () => undefined }) : grpc.credentials.createSsl(null, null, null, { checkServerIdentity: () => undefined, rejectUnauthorized: false }));
    assert.match(noCert, /^error 14$/, `without a client certificate: ${noCert}`);
    const plain = await attempt(grpc.credentials.createInsecure());
    assert.match(plain, /^error 14$/, `plaintext to the TLS port: ${plain}`);
  });
});

describe('the plaintext xDS listener', () => {
  test('serves loopback peers and refuses a non-loopback one (PERMISSION_DENIED)', async (t) => {
    const { networkInterfaces } = await import('node:os');
    const external = Object.values(networkInterfaces()).flat().find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address;
    if (external === undefined) return t.skip('no non-loopback IPv4 address on this host');
    const { startXdsServer } = await import('../../src/control/xds/xds-server.js');
    const { tempStore, silent } = await import('./xds-helpers.js');
    const { store, cleanup } = await tempStore();
    // Bound on every address (as --xds-insecure-public would), but without that flag: the guard decides per peer.
    const xds = await startXdsServer({ store, addr: '0.0.0.0:0', log: silent });
    try {
      const port = xds.address.slice(xds.address.lastIndexOf(':') + 1);
      const { AdsClient } = adsServices();
      const attempt = (host: string): Promise<string> =>
        new Promise((resolve) => {
          const client = new AdsClient(`${host}:${port}`, grpc.credentials.createInsecure());
          const call = (client as unknown as { StreamAggregatedResources(): grpc.ClientDuplexStream<Obj, Obj> }).StreamAggregatedResources();
          const done = (what: string): void => {
            call.cancel();
            client.close();
            resolve(what);
          };
          call.on('data', () => done('data'));
          call.on('error', (e: grpc.ServiceError) => done(`error ${e.code}`));
          call.write({ node: { id: `probe-${host}`, locality: {} }, type_url: 'type.googleapis.com/envoy.config.cluster.v3.Cluster', resource_names: [] });
        });
      assert.equal(await attempt('127.0.0.1'), 'data');
      assert.equal(await attempt(external), `error ${grpc.status.PERMISSION_DENIED}`);
    } finally {
      await xds.close();
      await cleanup();
    }
  });
});

/** An absolute-form request through a proxy's outbound listener (explicit mode), as `curl -x` sends it. */
function runWeftCurl(proxy: string, url: string): Promise<{ status: number; body: string }> {
  const [host, port] = [proxy.slice(0, proxy.lastIndexOf(':')), Number(proxy.slice(proxy.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const sock = connect(port, host, () => sock.write(`GET ${url} HTTP/1.1\r\nHost: ${new URL(url).host}\r\nConnection: close\r\n\r\n`));
    let got = '';
    sock.setEncoding('utf8').on('data', (c: string) => (got += c));
    sock.on('error', reject);
    sock.setTimeout(10_000, () => sock.destroy(new Error('timeout')));
    sock.on('close', () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(got);
      const i = got.indexOf('\r\n\r\n');
      const head = got.slice(0, i);
      let body = got.slice(i + 4);
      if (/transfer-encoding: chunked/i.test(head)) body = body.replace(/^[0-9a-f]+\r\n/i, '').replace(/\r\n0\r\n\r\n$/, '');
      resolve({ status: m ? Number(m[1]) : 0, body });
    });
  });
}

describe('ROOTCA over ADS', () => {
  test('is re-pushed after a root rotation; `default` is never served', async () => {
    const { startControlPlane } = await import('../../src/control/control-plane.js');
    const { RawAdsClient } = await import('./xds-helpers.js');
    const dir = await mkdtemp(join(tmpdir(), 'weft-rootca-ads-'));
    const cp = await startControlPlane({ dataDir: dir, apiAddr: '127.0.0.1:0', xdsAddr: '127.0.0.1:0', logLevel: 'silent', xdsDebounceMs: 10 });
    const ads = new RawAdsClient(cp.xdsAddress, 'rootca-probe');
    try {
      const SECRET = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';
      const certsIn = (r: { resources: Obj[] }): number => {
        const vc = r.resources[0]?.validation_context as { trusted_ca: { inline_bytes: Uint8Array } };
        return (Buffer.from(vc.trusted_ca.inline_bytes).toString('utf8').match(/BEGIN CERTIFICATE/g) ?? []).length;
      };
      ads.send({ type_url: SECRET, resource_names: ['ROOTCA', 'default'] });
      const first = await ads.next(SECRET);
      assert.deepEqual(first.resources.map((r) => r.name), ['ROOTCA']);
      assert.equal(certsIn(first), 1);
      ads.ack(first, ['ROOTCA', 'default']);
      await cp.ca.ca.rotateRoot();
      const second = await ads.next(SECRET, 10_000);
      assert.deepEqual(second.resources.map((r) => r.name), ['ROOTCA']);
      assert.equal(certsIn(second), 2, 'the new root joins the bundle');
    } finally {
      ads.close();
      await cp.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
