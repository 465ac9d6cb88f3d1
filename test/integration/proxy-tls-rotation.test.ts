// The proxy's own SVID (SDS name `default`) and the trust bundle (`ROOTCA`) from a real
// control plane: the IdentityManager gets its certificate from the CA over HTTP, the
// proxy follows renewals without dropping live connections, ROOTCA arrives over SDS on
// the ADS stream (and again after a root rotation), and worker processes get the
// material over IPC.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:https';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import { startControlPlane, type ControlPlane } from '../../src/control/control-plane.js';
import { createIdentityManager, type IdentityManager } from '../../src/proxy/identity/index.js';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { createBackoff } from '../../src/proxy/xds-client/backoff.js';
import { startUpstream, staticCluster, waitFor, type Upstream } from '../fixtures/proxy/helpers.js';
import { downstreamTls, httpChain, inboundListener, issueFrom, type Issued } from './proxy-tls-helpers.js';

let dir: string;
let cp: ControlPlane;
let app: Upstream;
let identity: IdentityManager;
let client: Issued;
const proxies: Proxy[] = [];

const sdsInbound = (): Record<string, unknown> => inboundListener([httpChain('inbound|80|tls', 'app', { transport_protocol: 'tls' }, downstreamTls('sds', 'sds'))]);

/** The serial of the certificate a fresh TLS handshake with the proxy sees (lower-case hex). */
function serverSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s: TLSSocket = connect({ host: '127.0.0.1', port, cert: client.certPem, key: client.keyPem, ca: cp.ca.bundlePem(), checkServerIdentity: () => undefined }, () => {
      const serial = s.getPeerCertificate().serialNumber.toLowerCase();
      s.end();
      resolve(serial);
    });
    s.on('error', reject);
  });
}

/** Strips leading zeros: node and the CA format serials slightly differently. */
const norm = (hex: string): string => hex.toLowerCase().replace(/^0+/, '');

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-proxy-tls-rotation-'));
  cp = await startControlPlane({ dataDir: join(dir, 'data'), apiAddr: '127.0.0.1:0', logLevel: 'silent' });
  app = await startUpstream('catalog');
  identity = createIdentityManager({ apiUrl: cp.apiUrl, joinToken: await cp.ca.ca.createJoinToken({ namespace: 'shop', serviceAccount: 'catalog' }) });
  await identity.start();
  client = await issueFrom(cp.ca.ca, dir, 'shop', 'web');
});

after(async () => {
  for (const p of proxies) await p.close();
  identity?.close();
  await app?.close();
  await cp?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('SVID rotation under load', () => {
  test('keep-alive connections survive a renewal; new handshakes get the new certificate', async () => {
    const p = await startProxy({ logLevel: 'silent', adminAddr: '127.0.0.1:0', identity, bootstrap: { static_resources: { listeners: [sdsInbound()], clusters: [staticCluster('app', [app.port])] } } });
    proxies.push(p);
    const port = p.listenerPort('inbound')!;
    const first = identity.current()!;
    assert.equal(norm(await serverSerial(port)), norm(first.serialNumber));

    const agent = new Agent({ keepAlive: true, maxSockets: 4, cert: client.certPem, key: client.keyPem, ca: cp.ca.bundlePem(), checkServerIdentity: () => undefined });
    const oldSockets = new WeakSet<Socket>();
    let renewed = false;
    let failures = 0;
    let ok = 0;
    let onOldAfterRenewal = 0;
    const one = (): Promise<void> => new Promise((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/items', agent }, (res) => {
        const sock = res.socket;
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) ok++; else failures++;
          if (!renewed) oldSockets.add(sock);
          else if (oldSockets.has(sock)) onOldAfterRenewal++;
          resolve();
        });
      });
      req.on('error', () => { failures++; resolve(); });
      req.end();
    });
    // Bounded load: 4 loops × 60 requests; the renewal happens a third of the way in.
    let sent = 0;
    const loop = async (): Promise<void> => {
      for (let i = 0; i < 60; i++) {
        if (++sent === 80) await identity.renew().then(() => { renewed = true; });
        await one();
      }
    };
    await Promise.all([loop(), loop(), loop(), loop()]);
    agent.destroy();
    assert.equal(failures, 0);
    assert.equal(ok, 240);
    assert.ok(renewed);
    assert.ok(onOldAfterRenewal > 0, 'connections opened before the renewal kept serving');
    const second = identity.current()!;
    assert.notEqual(second.serialNumber, first.serialNumber);
    assert.equal(norm(await serverSerial(port)), norm(second.serialNumber));
  });
});

describe('ROOTCA over SDS on the ADS stream', () => {
  test('the bundle arrives, and the new one after a root rotation', async () => {
    const p = await startProxy({
      logLevel: 'silent', adminAddr: '127.0.0.1:0', xdsAddresses: [cp.xdsAddress], xdsBackoff: createBackoff(50, 200),
      node: { id: 'sidecar~127.0.0.1~sds-test.shop' },
      // Whatever the control plane sends binds on loopback port 0, never on the real defaults.
      listenerAddresses: { outbound: '127.0.0.1:0', inbound: '127.0.0.1:0' },
      bootstrap: { static_resources: { listeners: [{ ...sdsInbound(), name: 'static-inbound' }], clusters: [staticCluster('app', [app.port])] } },
    });
    proxies.push(p);
    await waitFor('ROOTCA over SDS', () => p.tlsMaterial.validation('ROOTCA') === cp.ca.bundlePem());
    await cp.ca.ca.rotateRoot();
    await waitFor('the rotated bundle', () => p.tlsMaterial.validation('ROOTCA') === cp.ca.bundlePem());
    assert.match(p.tlsMaterial.validation('ROOTCA')!, /(-----BEGIN CERTIFICATE-----[\s\S]*){2}/, 'old and new root');
  });
});

describe('workers (concurrency 2)', () => {
  test('the SVID reaches the workers and follows a renewal', async () => {
    const p = await startProxy({ logLevel: 'silent', adminAddr: '127.0.0.1:0', concurrency: 2, identity, bootstrap: { static_resources: { listeners: [sdsInbound()], clusters: [staticCluster('app', [app.port])] } } });
    proxies.push(p);
    const port = await waitFor('the inbound listener', () => p.listenerPort('inbound'));
    // Connections are handed out round-robin: several handshakes reach both workers.
    for (let i = 0; i < 4; i++) assert.equal(norm(await serverSerial(port)), norm(identity.current()!.serialNumber));
    const renewed = await identity.renew();
    await waitFor('the renewed certificate in every worker', async () => {
      const seen = await Promise.all(Array.from({ length: 4 }, () => serverSerial(port)));
      return seen.every((s) => norm(s) === norm(renewed.serialNumber));
    });
  });
});
