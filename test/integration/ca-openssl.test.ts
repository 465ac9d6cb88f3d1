// The mesh CA checked from outside: certificates it issues are verified with
// the real `openssl` CLI, and two workloads complete an mTLS handshake with
// node:tls (OpenSSL underneath). The clock is injected, fixed at the real time
// the suite starts, so openssl and TLS (which use the real clock) agree.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { connect, createServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createCertificateAuthority, type CertificateAuthority } from '../../src/control/ca/ca.js';
import type { IssuedSvid } from '../../src/control/ca/sign.js';
import { isWeftError } from '../../src/lib/errors.js';
import { createCsr } from '../../src/lib/identity/csr.js';
import { exportPrivateKeyPem, generateKeyPair } from '../../src/lib/identity/keys.js';
import { splitPem } from '../../src/lib/identity/pem.js';

const run = promisify(execFile);
const OPENSSL = '/usr/bin/openssl';
const TD = 'cluster.local';
const HOUR = 3_600_000;

async function openssl(args: string[], cwd: string): Promise<{ ok: boolean; out: string }> {
  try {
    const { stdout, stderr } = await run(OPENSSL, args, { cwd });
    return { ok: true, out: stdout + stderr };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    return { ok: false, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

interface Workload {
  id: string;
  keyPem: string;
  svid: IssuedSvid;
}

async function enrol(ca: CertificateAuthority, ns: string, sa: string): Promise<Workload> {
  const id = `spiffe://${ca.trustDomain}/ns/${ns}/sa/${sa}`;
  const keys = await generateKeyPair();
  const token = await ca.createJoinToken({ namespace: ns, serviceAccount: sa, ttlMs: HOUR });
  const svid = await ca.issueForToken(token, await createCsr(keys, id));
  return { id, keyPem: await exportPrivateKeyPem(keys.privateKey), svid };
}

let dir: string;
const clock = { t: Date.now() };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-ca-openssl-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('generated root', () => {
  let ca: CertificateAuthority;
  let work: string;

  before(async () => {
    work = join(dir, 'generated');
    ca = await createCertificateAuthority(join(work, 'data'), { trustDomain: TD, now: () => clock.t });
    await writeFile(join(work, 'root.pem'), ca.bundlePem());
  });

  test('openssl verifies a leaf against the root, for TLS server and client use', async () => {
    const w = await enrol(ca, 'default', 'web');
    await writeFile(join(work, 'leaf.pem'), w.svid.certPem);
    for (const purpose of ['sslserver', 'sslclient']) {
      const r = await openssl(['verify', '-purpose', purpose, '-CAfile', 'root.pem', 'leaf.pem'], work);
      assert.ok(r.ok, r.out);
      assert.match(r.out, /leaf.pem: OK/);
    }
  });

  test('openssl x509 -text shows the X.509-SVID profile', async () => {
    const w = await enrol(ca, 'default', 'web');
    await writeFile(join(work, 'leaf-text.pem'), w.svid.certPem);
    const { ok, out } = await openssl(['x509', '-in', 'leaf-text.pem', '-noout', '-text'], work);
    assert.ok(ok, out);
    assert.equal(out.match(/URI:/g)?.length, 1, out);
    assert.match(out, /X509v3 Subject Alternative Name: *\n\s*URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/web\s*\n/);
    assert.doesNotMatch(out, /DNS:|IP Address:|email:/);
    assert.match(out, /X509v3 Basic Constraints: critical\n\s*CA:FALSE/);
    assert.match(out, /X509v3 Key Usage: critical\n\s*Digital Signature\s*\n/);
    assert.match(out, /X509v3 Extended Key Usage: *\n\s*TLS Web Server Authentication, TLS Web Client Authentication/);
    assert.match(out, /X509v3 Authority Key Identifier/);
    assert.match(out, /ASN1 OID: prime256v1/);
  });

  test('key files are 0600 and the ca directory 0700', async () => {
    const caDir = join(work, 'data', 'ca');
    assert.equal((await stat(caDir)).mode & 0o777, 0o700);
    for (const f of ['root-key.pem', 'join-token-key']) {
      assert.equal((await stat(join(caDir, f))).mode & 0o777, 0o600, f);
    }
    const r = await openssl(['ec', '-in', join(caDir, 'root-key.pem'), '-noout', '-check'], work);
    assert.ok(r.ok, r.out);
  });

  test('a CSR made by openssl is accepted; one for another SPIFFE ID than the token is refused', async () => {
    const good = `spiffe://${TD}/ns/shop/sa/cart`;
    const bad = `spiffe://${TD}/ns/kube-system/sa/admin`;
    assert.ok((await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'w.key'], work)).ok);
    for (const [name, uri] of [['good.csr', good], ['bad.csr', bad]] as const) {
      const r = await openssl(['req', '-new', '-key', 'w.key', '-subj', '/O=Test', '-addext', `subjectAltName=URI:${uri}`, '-out', name], work);
      assert.ok(r.ok, r.out);
    }
    const { readFile } = await import('node:fs/promises');
    const token = await ca.createJoinToken({ namespace: 'shop', serviceAccount: 'cart', ttlMs: HOUR });
    const svid = await ca.issueForToken(token, await readFile(join(work, 'good.csr'), 'utf8'));
    await writeFile(join(work, 'cart.pem'), svid.certPem);
    assert.ok((await openssl(['verify', '-CAfile', 'root.pem', 'cart.pem'], work)).ok);
    await assert.rejects(ca.issueForToken(token, await readFile(join(work, 'bad.csr'), 'utf8')),
      (e) => isWeftError(e, 'WEFT_ERR_FORBIDDEN') && e.message.includes(bad) && e.message.includes(good));
  });

  test('an expired token is refused (injected clock)', async () => {
    const token = await ca.createJoinToken({ namespace: 'default', serviceAccount: 'web', ttlMs: 60_000 });
    const csr = await createCsr(await generateKeyPair(), `spiffe://${TD}/ns/default/sa/web`);
    const saved = clock.t;
    clock.t += 61_000;
    try {
      await assert.rejects(ca.issueForToken(token, csr), (e) => isWeftError(e, 'WEFT_ERR_UNAUTHORIZED') && /expired/.test(e.message));
    } finally {
      clock.t = saved;
    }
  });

  test('two workloads complete an mTLS handshake and see each other\'s SPIFFE ID', async () => {
    const server = await enrol(ca, 'shop', 'catalog');
    const client = await enrol(ca, 'shop', 'frontend');
    const seen = await handshake(ca.bundlePem(), server, ca.bundlePem(), client);
    assert.equal(seen.byServer, `URI:${client.id}`);
    assert.equal(seen.byClient, `URI:${server.id}`);
  });

  test('a client whose certificate no trusted root signed is rejected', async () => {
    const stranger = await createCertificateAuthority(join(work, 'stranger'), { trustDomain: TD, now: () => clock.t });
    const server = await enrol(ca, 'shop', 'catalog');
    const intruder = await enrol(stranger, 'shop', 'frontend');
    await assert.rejects(handshake(ca.bundlePem(), server, stranger.bundlePem(), intruder));
  });

  test('root rotation: old and new leaves verify against the new bundle, with openssl and in TLS', async () => {
    const oldLeaf = await enrol(ca, 'default', 'old');
    await ca.rotateRoot();
    await writeFile(join(work, 'bundle.pem'), ca.bundlePem());
    assert.equal(splitPem(ca.bundlePem(), 'CERTIFICATE').length, 2);
    await writeFile(join(work, 'old-leaf.pem'), oldLeaf.svid.certPem);
    let r = await openssl(['verify', '-CAfile', 'bundle.pem', 'old-leaf.pem'], work);
    assert.ok(r.ok, r.out);

    await ca.promoteRoot();
    const newLeaf = await enrol(ca, 'default', 'new');
    await writeFile(join(work, 'new-leaf.pem'), newLeaf.svid.certPem);
    r = await openssl(['verify', '-CAfile', 'bundle.pem', 'new-leaf.pem'], work);
    assert.ok(r.ok, r.out);
    // The new leaf does not chain to the old root alone: the bundle is what makes it trusted.
    r = await openssl(['verify', '-CAfile', 'root.pem', 'new-leaf.pem'], work);
    assert.equal(r.ok, false, r.out);

    const seen = await handshake(ca.bundlePem(), newLeaf, ca.bundlePem(), oldLeaf);
    assert.equal(seen.byServer, `URI:${oldLeaf.id}`);
  });
});

describe('supplied root + intermediate (made with openssl)', () => {
  let work: string;
  let ca: CertificateAuthority;

  before(async () => {
    work = join(dir, 'supplied');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(work, { recursive: true });
    await writeFile(join(work, 'root.ext'), [
      'basicConstraints=critical,CA:TRUE',
      'keyUsage=critical,keyCertSign,cRLSign',
      'subjectKeyIdentifier=hash',
      '',
    ].join('\n'));
    await writeFile(join(work, 'inter.ext'), [
      'basicConstraints=critical,CA:TRUE,pathlen:0',
      'keyUsage=critical,keyCertSign,cRLSign',
      'subjectKeyIdentifier=hash',
      'authorityKeyIdentifier=keyid',
      '',
    ].join('\n'));
    const steps: string[][] = [
      ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'root.key'],
      ['req', '-new', '-key', 'root.key', '-subj', '/O=Corp/CN=Corp Root', '-out', 'root.csr'],
      ['x509', '-req', '-in', 'root.csr', '-signkey', 'root.key', '-days', '30', '-extfile', 'root.ext', '-out', 'root.pem'],
      ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'inter.key'],
      ['req', '-new', '-key', 'inter.key', '-subj', '/O=Corp/CN=Weft Intermediate', '-out', 'inter.csr'],
      ['x509', '-req', '-in', 'inter.csr', '-CA', 'root.pem', '-CAkey', 'root.key', '-CAcreateserial', '-days', '10', '-extfile', 'inter.ext', '-out', 'inter.pem'],
    ];
    for (const s of steps) {
      const r = await openssl(s, work);
      assert.ok(r.ok, `${s.join(' ')}\n${r.out}`);
    }
    ca = await createCertificateAuthority(join(work, 'data'), {
      trustDomain: TD,
      now: () => clock.t,
      supplied: { rootCertFile: join(work, 'root.pem'), intermediateCertFile: join(work, 'inter.pem'), intermediateKeyFile: join(work, 'inter.key') },
    });
  });

  test('the intermediate signs; openssl verifies with -untrusted; the chain carries the intermediate', async () => {
    const w = await enrol(ca, 'default', 'web');
    const chain = splitPem(w.svid.chainPem, 'CERTIFICATE');
    assert.equal(chain.length, 2);
    await writeFile(join(work, 'leaf.pem'), w.svid.certPem);
    await writeFile(join(work, 'chain-inter.pem'), chain[1] as string);
    await writeFile(join(work, 'bundle.pem'), ca.bundlePem());
    let r = await openssl(['verify', '-CAfile', 'bundle.pem', '-untrusted', 'chain-inter.pem', 'leaf.pem'], work);
    assert.ok(r.ok, r.out);
    r = await openssl(['verify', '-CAfile', 'bundle.pem', 'leaf.pem'], work);
    assert.equal(r.ok, false, 'without the intermediate the leaf must not verify');
    // The leaf's notAfter is capped by the intermediate's (10 days) only when shorter; 24 h here.
    assert.ok(w.svid.notAfter.getTime() <= clock.t + 24 * HOUR);
  });

  test('workloads with chains from the intermediate complete an mTLS handshake', async () => {
    const a = await enrol(ca, 'shop', 'a');
    const b = await enrol(ca, 'shop', 'b');
    const seen = await handshake(ca.bundlePem(), a, ca.bundlePem(), b);
    assert.equal(seen.byClient, `URI:${a.id}`);
  });

  test('the supplied intermediate key with the wrong certificate is refused at start', async () => {
    await assert.rejects(createCertificateAuthority(join(work, 'data2'), {
      trustDomain: TD,
      now: () => clock.t,
      supplied: { rootCertFile: join(work, 'root.pem'), intermediateCertFile: join(work, 'inter.pem'), intermediateKeyFile: join(work, 'root.key') },
    }), (e) => isWeftError(e, 'WEFT_ERR_INVALID') && /does not match/.test(e.message));
  });
});

/**
 * A TLS server on 127.0.0.1:0 requiring a client certificate, and a client, each
 * trusting its bundle. Identity is the URI SAN (no DNS names in SVIDs), so the
 * client's host-name check is replaced by reading the URI.
 */
async function handshake(serverCa: string, server: Workload, clientCa: string, client: Workload): Promise<{ byServer: string; byClient: string }> {
  let byServer = '';
  const srv = createServer({
    key: server.keyPem,
    cert: server.svid.chainPem,
    ca: serverCa,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
  }, (socket: TLSSocket) => {
    byServer = socket.getPeerCertificate().subjectaltname ?? '';
    socket.end('hello');
  });
  srv.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = srv.address() as AddressInfo;
    const byClient = await new Promise<string>((resolve, reject) => {
      const socket = connect({
        host: '127.0.0.1',
        port,
        key: client.keyPem,
        cert: client.svid.chainPem,
        ca: clientCa,
        rejectUnauthorized: true,
        checkServerIdentity: () => undefined,
      });
      socket.on('error', reject);
      let data = '';
      socket.on('data', (d: Buffer) => { data += d.toString(); });
      socket.on('end', () => {
        if (data !== 'hello') reject(new Error(`server closed without greeting (${data})`));
        else resolve(socket.getPeerCertificate().subjectaltname ?? '');
      });
      socket.on('close', () => reject(new Error('closed')));
    });
    return { byServer, byClient };
  } finally {
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  }
}
