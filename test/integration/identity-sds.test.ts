// SDS from a real control plane (in process, xDS on port 0): a raw gRPC
// SecretDiscoveryService client subscribes to ROOTCA, receives the trust
// bundle, ACKs it, and gets the new bundle pushed after a root rotation.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { startControlPlane, type ControlPlane } from '../../src/control/control-plane.js';
import { parseCertificates } from '../../src/lib/identity/cert.js';
import { envoyPackageDefinition } from '../../src/xds/protos.js';
import { SECRET } from '../../src/xds/type-urls.js';
import { createIdentityManager } from '../../src/proxy/identity/index.js';

interface DiscoveryResponse {
  version_info: string;
  resources: Record<string, unknown>[];
  type_url: string;
  nonce: string;
}

type SdsCall = grpc.ClientDuplexStream<Record<string, unknown>, DiscoveryResponse>;

interface SdsClient extends grpc.Client {
  StreamSecrets(): SdsCall;
  FetchSecrets(req: Record<string, unknown>, cb: (err: grpc.ServiceError | null, res?: DiscoveryResponse) => void): void;
}

function sdsClient(address: string): SdsClient {
  const root = grpc.loadPackageDefinition(envoyPackageDefinition()) as unknown as {
    envoy: { service: { secret: { v3: { SecretDiscoveryService: grpc.ServiceClientConstructor } } } };
  };
  return new root.envoy.service.secret.v3.SecretDiscoveryService(address, grpc.credentials.createInsecure()) as unknown as SdsClient;
}

/** Responses of one stream, read in order with a deadline. */
class Stream {
  private readonly queue: DiscoveryResponse[] = [];
  private waiter?: () => void;
  constructor(readonly call: SdsCall) {
    call.on('data', (r: DiscoveryResponse) => {
      this.queue.push(r);
      this.waiter?.();
    });
    call.on('error', () => undefined);
  }
  async next(timeoutMs = 5000): Promise<DiscoveryResponse> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no SDS response within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    return this.queue.shift()!;
  }
  pending(): number {
    return this.queue.length;
  }
}

/** The PEM in a ROOTCA secret (inline bytes, decoded as a Buffer or base64). */
function bundleOf(r: DiscoveryResponse): string {
  assert.equal(r.type_url, SECRET);
  assert.equal(r.resources.length, 1);
  const secret = r.resources[0] as { name?: string; validation_context?: { trusted_ca?: { inline_bytes?: Buffer | string; inline_string?: string } } };
  assert.equal(secret.name, 'ROOTCA');
  const ca = secret.validation_context?.trusted_ca;
  assert.ok(ca, JSON.stringify(secret));
  if (ca.inline_string !== undefined) return ca.inline_string;
  const b = ca.inline_bytes;
  return Buffer.isBuffer(b) ? b.toString('utf8') : Buffer.from(b ?? '', 'base64').toString('utf8');
}

let dir: string;
let cp: ControlPlane;
let client: SdsClient;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-identity-sds-'));
  cp = await startControlPlane({ dataDir: join(dir, 'data'), apiAddr: '127.0.0.1:0', logLevel: 'silent' });
  client = sdsClient(cp.xdsAddress);
});

after(async () => {
  client?.close();
  await cp?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('SDS ROOTCA', () => {
  test('a subscriber receives the bundle, and the new one after rotateRoot', async () => {
    const s = new Stream(client.StreamSecrets());
    s.call.write({ node: { id: 'sidecar~127.0.0.1~web.shop' }, type_url: SECRET, resource_names: ['ROOTCA'] });
    const first = await s.next();
    const bundle1 = bundleOf(first);
    assert.equal(bundle1, cp.ca.bundlePem());
    assert.equal(bundle1, await (await fetch(`${cp.apiUrl}/ca/bundle`)).text());
    assert.equal(parseCertificates(bundle1).length, 1);
    // ACK: nothing more is sent for the same bundle.
    s.call.write({ type_url: SECRET, resource_names: ['ROOTCA'], version_info: first.version_info, response_nonce: first.nonce });

    await cp.ca.ca.rotateRoot();
    const second = await s.next();
    const bundle2 = bundleOf(second);
    assert.notEqual(second.version_info, first.version_info);
    assert.notEqual(second.nonce, first.nonce);
    const roots = parseCertificates(bundle2);
    assert.equal(roots.length, 2, 'old and new root, so nothing breaks mid-rotation');
    assert.equal(bundle2, cp.ca.bundlePem());
    assert.match(roots[1]!.subject, /G2/);
    // What the proxy does with it: the identity manager takes the pushed bundle at once.
    const token = await cp.ca.ca.createJoinToken({ namespace: 'shop', serviceAccount: 'web' });
    const m = createIdentityManager({ apiUrl: cp.apiUrl, joinToken: token });
    const svid = await m.start();
    m.close();
    m.setTrustBundle(bundle1);
    assert.equal(m.tlsOptions().ca, bundle1);
    const ctx = m.getSecureContext();
    m.setTrustBundle(bundle2);
    assert.equal(m.tlsOptions().ca, bundle2);
    assert.equal(m.current()?.serialNumber, svid.serialNumber, 'same certificate, new bundle');
    assert.notEqual(m.getSecureContext(), ctx);
    s.call.write({ type_url: SECRET, resource_names: ['ROOTCA'], version_info: second.version_info, response_nonce: second.nonce });

    // Promotion changes who signs, not the bundle: no push.
    await cp.ca.ca.promoteRoot();
    // Retiring the old root (forced: its leaves are not expired) shrinks the bundle: a push.
    await cp.ca.ca.retireRoot({ force: true });
    const third = await s.next();
    const bundle3 = parseCertificates(bundleOf(third));
    assert.equal(bundle3.length, 1);
    assert.match(bundle3[0]!.subject, /G2/);
    assert.equal(s.pending(), 0, 'promotion pushed nothing');
    s.call.end();
  });

  test('a wildcard (no names) subscription gets ROOTCA; unknown names get nothing', async () => {
    const wild = new Stream(client.StreamSecrets());
    wild.call.write({ node: { id: 'n1' }, type_url: SECRET, resource_names: [] });
    assert.equal(bundleOf(await wild.next()), cp.ca.bundlePem());
    wild.call.end();

    const both = new Stream(client.StreamSecrets());
    both.call.write({ node: { id: 'n2' }, type_url: SECRET, resource_names: ['default', 'ROOTCA'] });
    const r = await both.next();
    assert.equal(r.resources.length, 1, 'the workload certificate is never served by the control plane');
    both.call.end();
  });

  test('FetchSecrets answers once', async () => {
    const r = await new Promise<DiscoveryResponse>((resolve, reject) => {
      client.FetchSecrets({ node: { id: 'n3' }, type_url: SECRET, resource_names: ['ROOTCA'] }, (err, res) => (err ? reject(err) : resolve(res!)));
    });
    assert.equal(bundleOf(r), cp.ca.bundlePem());
  });
});
