// Certificate rotation under load, end to end (issue 6, "Tests"): a control plane whose
// workload certificates live 6 s (--dev-workload-ttl), two `weft proxy` processes with
// join tokens (xDS over mTLS, STRICT mTLS between them), and 30 s of bounded load
// app → web proxy → mTLS → backend proxy → app across several renewals on both sides
// and a root rotation (rotate, then promote once both proxies hold the new bundle).
// Zero failed requests. Fresh handshakes (probes with a mesh client certificate, and
// upstream reconnects forced by BackendPolicy changes) show the new certificates.
//
// The control plane runs in this process (startControlPlane) so the test can wait on its
// state directly (test/integration/ca-rotate.test.ts drives the same steps through
// `weft ca rotate` and POST /ca/rotate); the proxies are the built binary. A second test starts the binary
// `weft control --dev-workload-ttl` to check the flag itself. Readiness is printed lines
// and polled state; no sleeps stand in for it (the load's pacing timers are the load).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { Agent as HttpAgent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { startControlPlane, type ControlPlane } from '../../src/control/control-plane.js';
import { createCsr } from '../../src/lib/identity/csr.js';
import { generateKeyPair } from '../../src/lib/identity/keys.js';
import { issueFrom, type Issued } from '../integration/proxy-tls-helpers.js';
import { startApp, viaProxy, type App } from './helpers/http.js';
import { killAll, runWeft, startWeft, stderrTails, stop, until } from './helpers/procs.js';

const TTL_MS = 6000;
const LOAD_MS = 30_000;
const CONCURRENCY = 4;
const PROXY_READY = /^weft proxy ready: admin=(\S+) outbound=(\S+) node=(\S+)$/m;
// Printed right after the ready line: waiting for it means both are out.
const INBOUND_LINE = /^weft proxy inbound: \S+:(\d+) /;
const CONTROL_READY = /^weft control ready: api=(\S+) xds=(\S+) data=(\S+)$/;

let tmp: string;
let cp: ControlPlane;
let failed = false;
const apps: App[] = [];

interface Sidecar {
  service: string;
  admin: string;
  outbound: string;
  inboundPort: number;
  spiffeId: string;
  sni: string;
}
const sidecars: Record<string, Sidecar> = {};

interface CertsView {
  spiffeId: string;
  certificate: { serialNumber: string; issuer: string; notBefore: string; notAfter: string };
  renewal: { renewals: number; failures: number; lastError?: string };
  trustBundle: { subject: string; serialNumber: string }[];
}

async function certs(s: Sidecar): Promise<CertsView> {
  const r = (await (await fetch(`${s.admin}/certs`)).json()) as { certificates: CertsView[] };
  return r.certificates[0]!;
}

/** `weft_ssl_handshake_total{listener="..."}` of a proxy, summed over its series for that scope. */
async function handshakes(s: Sidecar, label: string): Promise<number> {
  const text = await (await fetch(`${s.admin}/metrics`)).text();
  let n = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('weft_ssl_handshake_total{') && line.includes(label)) n += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return n;
}

/** POST /apply (the API `weft apply` uses), without a CLI process per call: they would compete with the load for CPU. */
async function apply(yaml: string): Promise<void> {
  const res = await fetch(`${cp.apiUrl}/apply`, { method: 'POST', headers: { authorization: `Bearer ${cp.adminToken}`, 'content-type': 'application/yaml' }, body: yaml });
  assert.equal(res.status, 200, `apply: ${res.status} ${await res.text()}`);
}

async function startSidecar(service: string, appPort: number): Promise<Sidecar> {
  // The token outlives the test: renewals authenticate with it (docs/security.md).
  const token = await cp.ca.ca.createJoinToken({ namespace: 'shop', serviceAccount: service, ttlMs: 600_000 });
  const p = await startWeft(`weft proxy ${service}`, [
    'proxy', '--xds', cp.xdsTlsAddress!, '--xds-tls', '--token', token, '--api', cp.apiUrl, '--service', service, '--namespace', 'shop',
    '--workload-port', String(appPort), '--admin-addr', '127.0.0.1:0', '--outbound-addr', '127.0.0.1:0', '--inbound-addr', '127.0.0.1:0', '--log-level', 'warn',
  ], INBOUND_LINE, { home: tmp, timeoutMs: 30_000 });
  const ready = PROXY_READY.exec(p.run.stdout());
  assert.ok(ready, `no ready line in:\n${p.run.stdout()}`);
  return {
    service, admin: ready[1]!, outbound: ready[2]!, inboundPort: Number(p.match[1]),
    spiffeId: `spiffe://cluster.local/ns/shop/sa/${service}`, sni: `outbound_.80_._.${service}.shop.svc.cluster.local`,
  };
}

/** Strips leading zeros: node and the CA format serials slightly differently. */
const norm = (hex: string): string => hex.toLowerCase().replace(/^0+/, '');

/**
 * A fresh mTLS connection to a proxy's inbound listener, as another proxy makes one
 * (SNI, mesh client certificate, the server's SPIFFE ID checked), and one request on
 * it. Resolves with the status and the serial the proxy presented.
 */
function probe(s: Sidecar, client: Issued): Promise<{ status: number; serial: string; issuer: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({
      host: '127.0.0.1', port: s.inboundPort, path: '/probe', agent: false, servername: s.sni,
      headers: { host: `${s.service}.shop` }, cert: client.certPem, key: client.keyPem, ca: cp.ca.bundlePem(),
      checkServerIdentity: (_host: string, cert: PeerCertificate) => (cert.subjectaltname === `URI:${s.spiffeId}` ? undefined : new Error(`server is ${cert.subjectaltname}, not ${s.spiffeId}`)),
    }, (res) => {
      const peer = (res.socket as TLSSocket).getPeerCertificate();
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, serial: norm(peer.serialNumber), issuer: String(peer.issuer.CN ?? '') }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`probe ${s.service}: no answer in 10 s`)));
    req.on('error', reject);
    req.end();
  });
}

before(async () => {
  failed = true;
  tmp = await mkdtemp(join(tmpdir(), 'weft-rotation-e2e-'));
  cp = await startControlPlane({
    dataDir: join(tmp, 'data'), apiAddr: '127.0.0.1:0', xdsAddr: '127.0.0.1:0', xdsTlsAddr: '127.0.0.1:0', logLevel: 'silent', devWorkloadTtlMs: TTL_MS,
  });
  const backendApp = await startApp('backend');
  const webApp = await startApp('web');
  apps.push(backendApp, webApp);
  await apply(`
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: backend, namespace: shop }
spec:
  ports: [{ name: http, port: 80, targetPort: ${backendApp.port}, protocol: http }]
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: web, namespace: shop }
spec:
  ports: [{ name: http, port: 80, targetPort: ${webApp.port}, protocol: http }]
---
apiVersion: weft.dev/v1alpha1
kind: SecurityPolicy
metadata: { name: shop-strict, namespace: shop }
spec:
  mtls: { mode: STRICT }
`);
  sidecars.backend = await startSidecar('backend', backendApp.port);
  sidecars.web = await startSidecar('web', webApp.port);
  const agent = new HttpAgent({ keepAlive: true });
  try {
    await until('backend reachable through the web sidecar over mTLS', 20_000, async () => ((await viaProxy(sidecars.web!.outbound, 'http://backend.shop/warm', agent)).status === 200 ? true : undefined), 100);
  } finally {
    agent.destroy();
  }
  failed = false;
});

after(async () => {
  const tails = failed ? stderrTails() : '';
  if (tails !== '') process.stdout.write(tails.replace(/^/gm, '# ') + '\n');
  await killAll();
  for (const a of apps) await a.close();
  await cp?.close();
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
});

function step(name: string, fn: () => Promise<void>): void {
  test(name, async () => {
    try { await fn(); } catch (e) { failed = true; throw e; }
  });
}

describe('rotation under load', { concurrency: false }, () => {
  step(`${LOAD_MS / 1000} s of load through two proxies across renewals (TTL ${TTL_MS / 1000} s) and a root rotation: zero failed requests`, async () => {
    const web = sidecars.web!;
    const backend = sidecars.backend!;
    // A probe client of the mesh with a long-lived certificate (issueFor, not the join-token path the TTL override applies to).
    let client = await issueFrom(cp.ca.ca, tmp, 'shop', 'prober', 600_000);
    const before = { web: await certs(web), backend: await certs(backend), inbound: await handshakes(backend, 'listener="inbound"') };
    const oldRoot = before.backend.certificate.issuer;

    const agent = new HttpAgent({ keepAlive: true, maxSockets: CONCURRENCY });
    const end = Date.now() + LOAD_MS;
    let ok = 0;
    const failures: string[] = [];
    const loadLoop = async (): Promise<void> => {
      // Bounded by the deadline; each request by viaProxy's 10 s timeout.
      while (Date.now() < end) {
        try {
          const r = await viaProxy(web.outbound, 'http://backend.shop/items', agent);
          if (r.status === 200 && r.body === 'backend') ok++;
          else failures.push(`${r.status} ${String(r.headers['x-weft-response-flags'] ?? '')} ${r.body.slice(0, 100)}`);
        } catch (e) {
          failures.push(e instanceof Error ? e.message : String(e));
        }
      }
    };

    // Fresh handshakes with both proxies' inbound listeners, every 300 ms: which certificate each presents.
    const serials = { web: new Set<string>(), backend: new Set<string>() };
    const issuers = new Set<string>();
    const probes = { web: 0, backend: 0 };
    const probeLoop = async (): Promise<void> => {
      while (Date.now() < end) {
        for (const s of [web, backend]) {
          try {
            const r = await probe(s, client);
            probes[s.service as 'web' | 'backend']++;
            if (r.status !== 200) failures.push(`probe ${s.service}: ${r.status}`);
            serials[s.service as 'web' | 'backend'].add(r.serial);
            issuers.add(r.issuer);
          } catch (e) {
            failures.push(`probe ${s.service}: ${e instanceof Error ? e.message : String(e)}`);
          }
        }
        await new Promise((r) => setTimeout(r, 300));
      }
    };

    // Every 5 s a BackendPolicy change (maxConnections) makes web's proxy replace its pool
    // towards backend, so web opens new mTLS connections with whatever certificate it holds then.
    let reconnects = 0;
    const policyLoop = async (): Promise<void> => {
      for (let i = 1; Date.now() + 5000 < end; i++) {
        await new Promise((r) => setTimeout(r, 5000));
        await apply(`
apiVersion: weft.dev/v1alpha1
kind: BackendPolicy
metadata: { name: backend-pool, namespace: shop }
spec:
  targetRefs: [{ kind: Service, name: backend }]
  connectionPool: { maxConnections: ${100 + i} }
`);
        reconnects++;
      }
    };

    // The root rotation, operator style: rotate; once both proxies trust the new root, promote.
    let promotedAt = 0;
    const rootLoop = async (): Promise<void> => {
      await new Promise((r) => setTimeout(r, 6000));
      await cp.ca.ca.rotateRoot();
      await until('both proxies hold the two-root bundle', 10_000, async () => {
        const [w, b] = await Promise.all([certs(web), certs(backend)]);
        return w.trustBundle.length === 2 && b.trustBundle.length === 2 ? true : undefined;
      }, 100);
      await cp.ca.ca.promoteRoot();
      promotedAt = Date.now();
      // From now on the probe presents a leaf of the new root too.
      client = await issueFrom(cp.ca.ca, tmp, 'shop', 'prober', 600_000);
    };

    const started = Date.now();
    await Promise.all([...Array.from({ length: CONCURRENCY }, loadLoop), probeLoop(), policyLoop(), rootLoop()]);
    const elapsed = (Date.now() - started) / 1000;
    agent.destroy();

    const after = { web: await certs(web), backend: await certs(backend), inbound: await handshakes(backend, 'listener="inbound"') };
    const renewals = { web: after.web.renewal.renewals - before.web.renewal.renewals, backend: after.backend.renewal.renewals - before.backend.renewal.renewals };
    const figures = {
      seconds: Math.round(elapsed * 10) / 10, requests: ok, rps: Math.round(ok / elapsed), failed: failures.length, renewals,
      renewalFailures: { web: after.web.renewal.failures, backend: after.backend.renewal.failures },
      servedSerials: { web: serials.web.size, backend: serials.backend.size }, probes, issuers: [...issuers],
      poolReplacements: reconnects, backendInboundHandshakesFromWeb: after.inbound - before.inbound - probes.backend, promotedAfterS: promotedAt === 0 ? null : Math.round((promotedAt - started) / 100) / 10,
    };
    process.stdout.write(`# rotation under load: ${JSON.stringify(figures)}\n`);

    assert.deepEqual(failures.slice(0, 10), [], `${failures.length} failed requests`);
    assert.ok(ok > 0);
    assert.ok(renewals.web >= 3 && renewals.backend >= 3, `renewals ${JSON.stringify(renewals)}`);
    // Fresh handshakes saw the renewed certificates: several serials per proxy, each current at the time.
    assert.ok(serials.web.size >= 3 && serials.backend.size >= 3, `served serials ${JSON.stringify(figures.servedSerials)}`);
    // Leaves of the promoted root were served (probes verify against the bundle) and are what both hold now.
    assert.ok(promotedAt > 0);
    assert.ok(issuers.size >= 2, `issuers seen: ${[...issuers].join(', ')}`);
    assert.notEqual(after.web.certificate.issuer, oldRoot);
    assert.notEqual(after.backend.certificate.issuer, oldRoot);
    // web's replaced pools opened new mTLS connections to backend during the load (the
    // probes' handshakes with backend are counted there too, and taken off).
    assert.ok(reconnects >= 4);
    assert.ok(figures.backendInboundHandshakesFromWeb >= reconnects, `backend inbound handshakes from web: ${figures.backendInboundHandshakesFromWeb} for ${reconnects} pool replacements`);
  });
});

describe('weft control --dev-workload-ttl', { concurrency: false }, () => {
  step('issues certificates with the given lifetime, says so, and refuses less than 2 s', async () => {
    const dataDir = join(tmp, 'data-cli');
    const bad = await runWeft(['control', '--data-dir', dataDir, '--api-addr', '127.0.0.1:0', '--xds-addr', '127.0.0.1:0', '--dev-workload-ttl', '1s'], { home: tmp });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--dev-workload-ttl 1s: expected a duration of at least 2s/);

    const c = await startWeft('weft control --dev-workload-ttl', ['control', '--data-dir', dataDir, '--api-addr', '127.0.0.1:0', '--xds-addr', '127.0.0.1:0', '--dev-workload-ttl', '5s', '--log-level', 'warn'], CONTROL_READY, { home: tmp });
    const api = c.match[1]!;
    await until('the warning on stderr', 5000, async () => (/warning: --dev-workload-ttl: every workload certificate lives 5s/.test(c.run.stderr()) ? true : undefined));
    const adminToken = (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim();
    const created = await fetch(`${api}/ca/tokens`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ namespace: 'shop', serviceAccount: 'web', ttl: '1h' }) });
    assert.equal(created.status, 201);
    const { token } = (await created.json()) as { token: string };
    const keys = await generateKeyPair();
    const issued = await fetch(`${api}/ca/certificates`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ csr: await createCsr(keys, 'spiffe://cluster.local/ns/shop/sa/web') }) });
    assert.equal(issued.status, 200);
    const { notAfter } = (await issued.json()) as { notAfter: string };
    const left = Date.parse(notAfter) - Date.now();
    // notAfter = issuance + 5 s, whole seconds in X.509: between 3.5 s and 5 s from now.
    assert.ok(left > 3500 && left <= 5000, `notAfter ${notAfter} is ${left} ms away`);
    assert.equal(await stop(c.run), 0);
  });
});
