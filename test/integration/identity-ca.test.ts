// Workload identity end to end in one process: a real control plane (file
// store, CA in DATA_DIR/ca, HTTP API on port 0), join tokens made over HTTP,
// the proxy-side identity manager getting its certificate, checked with the
// real `openssl` CLI against GET /ca/bundle. Renewal runs on an injected clock;
// nothing sleeps.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SignJWT } from 'jose';
import { startControlPlane, type ControlPlane } from '../../src/control/control-plane.js';
import { createCsr } from '../../src/lib/identity/csr.js';
import { generateKeyPair } from '../../src/lib/identity/keys.js';
import { openFileStore } from '../../src/store/file/file-store.js';
import { createLogger } from '../../src/lib/log.js';
import { createIdentityManager, type IdentityClock, type WorkloadSvid } from '../../src/proxy/identity/index.js';

const run = promisify(execFile);
const OPENSSL = '/usr/bin/openssl';

async function openssl(args: string[], cwd: string): Promise<{ ok: boolean; out: string }> {
  try {
    const { stdout, stderr } = await run(OPENSSL, args, { cwd });
    return { ok: true, out: stdout + stderr };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    return { ok: false, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

/** Timers that fire only when the test moves time on. */
class FakeClock implements IdentityClock {
  t = Date.now();
  private seq = 0;
  readonly timers = new Map<number, { at: number; fn: () => void }>();
  now = (): number => this.t;
  setTimeout = (fn: () => void, ms: number): unknown => {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  };
  clearTimeout = (h: unknown): void => {
    this.timers.delete(h as number);
  };
  /** The time of the next timer. */
  next(): number | undefined {
    let min: number | undefined;
    for (const t of this.timers.values()) if (min === undefined || t.at < min) min = t.at;
    return min;
  }
  /** Moves to `t` and runs the timers due. */
  advanceTo(t: number): void {
    this.t = t;
    for (const [id, timer] of [...this.timers]) {
      if (timer.at <= t) {
        this.timers.delete(id);
        timer.fn();
      }
    }
  }
}

let dir: string;
let cp: ControlPlane;

async function api(path: string, init: { method?: string; token?: string; body?: unknown } = {}): Promise<{ status: number; json: Record<string, unknown>; text: string }> {
  const headers: Record<string, string> = {};
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(cp.apiUrl + path, { method: init.method ?? 'GET', headers, ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}) });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // PEM
  }
  return { status: res.status, json, text };
}

async function newToken(namespace: string, serviceAccount: string, ttl = '1h'): Promise<string> {
  const r = await api('/ca/tokens', { method: 'POST', token: cp.adminToken, body: { namespace, serviceAccount, ttl } });
  assert.equal(r.status, 201, r.text);
  assert.equal(typeof r.json.token, 'string');
  return r.json.token as string;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-identity-'));
  cp = await startControlPlane({ dataDir: join(dir, 'data'), apiAddr: '127.0.0.1:0', logLevel: 'silent' });
});

after(async () => {
  await cp?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('POST /ca/tokens', () => {
  test('needs the admin token', async () => {
    const none = await api('/ca/tokens', { method: 'POST', body: { namespace: 'shop', serviceAccount: 'web' } });
    assert.equal(none.status, 401);
    const wrong = await api('/ca/tokens', { method: 'POST', token: 'not-the-admin-token', body: { namespace: 'shop', serviceAccount: 'web' } });
    assert.equal(wrong.status, 403);
  });

  test('returns a token, its SPIFFE ID and expiry', async () => {
    const r = await api('/ca/tokens', { method: 'POST', token: cp.adminToken, body: { namespace: 'shop', serviceAccount: 'web', ttl: '2h' } });
    assert.equal(r.status, 201, r.text);
    assert.match(r.json.token as string, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.equal(r.json.spiffeId, 'spiffe://cluster.local/ns/shop/sa/web');
    const exp = Date.parse(r.json.expiresAt as string);
    assert.ok(Math.abs(exp - (Date.now() + 2 * 3_600_000)) < 60_000, `expiresAt ${r.json.expiresAt as string}`);
  });

  test('refuses bad fields with 400 and names them', async () => {
    const r = await api('/ca/tokens', { method: 'POST', token: cp.adminToken, body: { namespace: 'a/b', serviceAccount: 7, ttl: 'soon', extra: 1 } });
    assert.equal(r.status, 400, r.text);
    const paths = (r.json.details as { path: string }[]).map((d) => d.path).sort();
    assert.deepEqual(paths, ['extra', 'namespace', 'serviceAccount', 'ttl']);
    const bad = await api('/ca/tokens', { method: 'POST', token: cp.adminToken, body: { namespace: 'shop', serviceAccount: 'Bad_SA' } });
    assert.equal(bad.status, 400, bad.text);
  });

  test('GET is not allowed', async () => {
    const r = await api('/ca/tokens', { token: cp.adminToken });
    assert.equal(r.status, 400);
  });
});

describe('GET /ca/bundle', () => {
  test('is public PEM, and JSON with the trust domain on request', async () => {
    const res = await fetch(`${cp.apiUrl}/ca/bundle`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /pem/);
    const pem = await res.text();
    assert.equal(pem, cp.ca.bundlePem());
    assert.match(pem, /^-----BEGIN CERTIFICATE-----/);
    const j = await api('/ca/bundle?format=json');
    assert.equal(j.json.trustDomain, 'cluster.local');
    assert.equal(j.json.trustBundle, pem);
  });
});

describe('the identity manager gets a certificate', () => {
  let svid: WorkloadSvid;

  before(async () => {
    const joinToken = await newToken('shop', 'web');
    const m = createIdentityManager({ apiUrl: cp.apiUrl, joinToken });
    try {
      svid = await m.start();
    } finally {
      m.close();
    }
  });

  test('openssl verifies it against GET /ca/bundle, with the one URI SAN', async () => {
    const bundle = await (await fetch(`${cp.apiUrl}/ca/bundle`)).text();
    await writeFile(join(dir, 'bundle.pem'), bundle);
    await writeFile(join(dir, 'chain.pem'), svid.chainPem);
    const v = await openssl(['verify', '-CAfile', 'bundle.pem', '-purpose', 'sslclient', 'chain.pem'], dir);
    assert.ok(v.ok, v.out);
    assert.match(v.out, /chain\.pem: OK/);
    const text = await openssl(['x509', '-in', 'chain.pem', '-noout', '-text'], dir);
    assert.ok(text.ok, text.out);
    assert.match(text.out, /URI:spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web\s*$/m);
    assert.doesNotMatch(text.out, /DNS:/);
    assert.match(text.out, /CA:FALSE/);
    assert.equal(svid.spiffeId, 'spiffe://cluster.local/ns/shop/sa/web');
  });

  test('the key stays local: the CSR carried only the public key, and key and certificate match', async () => {
    await writeFile(join(dir, 'key.pem'), svid.keyPem, { mode: 0o600 });
    const a = await openssl(['pkey', '-in', 'key.pem', '-pubout'], dir);
    const b = await openssl(['x509', '-in', 'chain.pem', '-noout', '-pubkey'], dir);
    assert.ok(a.ok && b.ok, a.out + b.out);
    assert.equal(a.out, b.out);
  });

  test('the default lifetime is 24 h', () => {
    const life = svid.notAfter.getTime() - Date.now();
    assert.ok(life > 23.9 * 3_600_000 && life <= 24 * 3_600_000, `lifetime ${life} ms`);
  });

  test('two proxies with their credentials complete an mTLS handshake', async () => {
    const m2 = createIdentityManager({ apiUrl: cp.apiUrl, joinToken: await newToken('shop', 'api') });
    await m2.start();
    m2.close();
    const serverOpts = m2.tlsOptions();
    const server = createServer({ ...serverOpts, requestCert: true, rejectUnauthorized: true }, (s) => {
      s.end((s.getPeerCertificate().subjectaltname ?? '') + '\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      const got = await new Promise<{ peer: string; body: string }>((resolve, reject) => {
        const s: TLSSocket = connect({ host: '127.0.0.1', port, key: svid.keyPem, cert: svid.chainPem, ca: svid.bundlePem, checkServerIdentity: () => undefined }, () => {
          let body = '';
          const peer = s.getPeerCertificate().subjectaltname ?? '';
          s.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ peer, body }));
        });
        s.on('error', reject);
      });
      assert.equal(got.peer, 'URI:spiffe://cluster.local/ns/shop/sa/api');
      assert.equal(got.body.trim(), 'URI:spiffe://cluster.local/ns/shop/sa/web');
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe('POST /ca/certificates refusals', () => {
  async function csrFor(id: string): Promise<string> {
    return createCsr(await generateKeyPair(), id);
  }

  test('a token for namespace A with a CSR for namespace B: 403', async () => {
    const token = await newToken('team-a', 'web');
    const r = await api('/ca/certificates', { method: 'POST', token, body: { csr: await csrFor('spiffe://cluster.local/ns/team-b/sa/web') } });
    assert.equal(r.status, 403, r.text);
    assert.equal(r.json.reason, 'WEFT_ERR_FORBIDDEN');
    assert.match(r.json.message as string, /ns\/team-b.*ns\/team-a/);
  });

  test('the identity manager asked for another ID reports the refusal', async () => {
    const m = createIdentityManager({ apiUrl: cp.apiUrl, joinToken: await newToken('team-a', 'web'), spiffeId: 'spiffe://cluster.local/ns/team-b/sa/web' });
    await assert.rejects(m.start(), (e: Error & { code?: string }) => e.code === 'WEFT_ERR_FORBIDDEN');
    m.close();
  });

  test('an expired token: 401', async () => {
    const key = Buffer.from((await readFile(join(dir, 'data', 'ca', 'join-token-key'), 'utf8')).trim(), 'base64url');
    const past = Math.floor(Date.now() / 1000) - 3600;
    const token = await new SignJWT({ ns: 'shop', sa: 'web' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer('weft')
      .setAudience('weft-join')
      .setIssuedAt(past - 60)
      .setExpirationTime(past)
      .setJti(randomBytes(16).toString('base64url'))
      .sign(key);
    const r = await api('/ca/certificates', { method: 'POST', token, body: { csr: await csrFor('spiffe://cluster.local/ns/shop/sa/web') } });
    assert.equal(r.status, 401, r.text);
    assert.match(r.json.message as string, /expired/);
  });

  test('no token, the admin token, a forged token: 401', async () => {
    const csr = await csrFor('spiffe://cluster.local/ns/shop/sa/web');
    assert.equal((await api('/ca/certificates', { method: 'POST', body: { csr } })).status, 401);
    assert.equal((await api('/ca/certificates', { method: 'POST', token: cp.adminToken, body: { csr } })).status, 401);
    const forged = await new SignJWT({ ns: 'shop', sa: 'web' }).setProtectedHeader({ alg: 'HS256' }).setIssuer('weft').setAudience('weft-join')
      .setExpirationTime('1h').setJti('x').sign(randomBytes(32));
    assert.equal((await api('/ca/certificates', { method: 'POST', token: forged, body: { csr } })).status, 401);
  });

  test('a body without a CSR, or a CSR that is not one: 400', async () => {
    const token = await newToken('shop', 'web');
    assert.equal((await api('/ca/certificates', { method: 'POST', token, body: {} })).status, 400);
    assert.equal((await api('/ca/certificates', { method: 'POST', token, body: { csr: 'hello' } })).status, 400);
  });
});

describe('renewal', () => {
  test('at about half life on the injected clock, with a new key and serial, emitting rotated', async () => {
    const clock = new FakeClock();
    const m = createIdentityManager({ apiUrl: cp.apiUrl, joinToken: await newToken('shop', 'web'), clock, random: () => 0.5, jitter: 0.1 });
    const first = await m.start();
    const at = clock.next();
    assert.ok(at !== undefined, 'a renewal is scheduled');
    const half = (first.notAfter.getTime() - clock.t) / 2;
    assert.ok(Math.abs(at - clock.t - half) < 1000, `renews in ${at - clock.t} ms, half life ${half} ms`);
    const ctx1 = m.getSecureContext();
    const rotated = new Promise<WorkloadSvid>((resolve) => m.once('rotated', resolve));
    clock.advanceTo(at);
    const second = await rotated;
    assert.notEqual(second.serialNumber, first.serialNumber);
    assert.notEqual(second.keyPem, first.keyPem);
    assert.equal(m.current(), second);
    assert.notEqual(m.getSecureContext(), ctx1, 'the secure context follows the rotation');
    assert.equal(m.certs().renewal.renewals, 1);
    assert.equal(m.certs().certificate?.serialNumber, second.serialNumber);
    m.close();
    assert.equal(clock.timers.size, 0, 'close() leaves no timer');
  });

  test('jitter spreads the renewal time', async () => {
    const times: number[] = [];
    for (const r of [0, 0.999]) {
      const clock = new FakeClock();
      const m = createIdentityManager({ apiUrl: cp.apiUrl, joinToken: await newToken('shop', 'web'), clock, random: () => r, jitter: 0.2 });
      const s = await m.start();
      times.push((clock.next()! - clock.t) / (s.notAfter.getTime() - clock.t));
      m.close();
    }
    assert.ok(Math.abs(times[0]! - 0.4) < 0.01 && Math.abs(times[1]! - 0.6) < 0.01, `fractions ${times.join(', ')}`);
  });

  test('a failed renewal keeps the certificate and retries with backoff', async () => {
    const clock = new FakeClock();
    let fail = false;
    const f: typeof fetch = (input, init) => (fail ? Promise.reject(new Error('connection refused')) : fetch(input, init));
    const m = createIdentityManager({ apiUrl: cp.apiUrl, joinToken: await newToken('shop', 'web'), clock, fetch: f, retryMs: 1000 });
    const first = await m.start();
    fail = true;
    const failed = new Promise<unknown>((resolve) => m.once('renewalFailed', resolve));
    clock.advanceTo(clock.next()!);
    await failed;
    assert.equal(m.current(), first);
    assert.equal(clock.next()! - clock.t, 1000);
    assert.match(m.certs().renewal.lastError ?? '', /connection refused/);
    fail = false;
    const rotated = new Promise<WorkloadSvid>((resolve) => m.once('rotated', resolve));
    clock.advanceTo(clock.next()!);
    assert.notEqual((await rotated).serialNumber, first.serialNumber);
    m.close();
  });
});

describe('metrics and Mesh settings', () => {
  test('/metrics counts issued certificates and shows the soonest expiry', async () => {
    const text = (await api('/metrics')).text;
    const issued = /^weft_control_certificates_issued_total (\d+)$/m.exec(text);
    assert.ok(issued, text);
    assert.ok(Number(issued[1]) >= 5, `issued ${issued[1]}`);
    assert.equal(Number(issued[1]), cp.ca.stats().issuedTotal);
    const soonest = /^weft_control_certificate_soonest_expiry_seconds (\S+)$/m.exec(text);
    assert.ok(soonest, text);
    assert.equal(Number(soonest[1]), cp.ca.stats().soonestExpiry!.getTime() / 1000);
  });

  test('the workload TTL follows Mesh default spec.certificates.workloadTTL', async () => {
    const mesh = { apiVersion: 'weft.dev/v1alpha1', kind: 'Mesh', metadata: { name: 'default' }, spec: { certificates: { workloadTTL: '1h' } } };
    const put = await api('/apply', { method: 'POST', token: cp.adminToken, body: mesh });
    assert.equal(put.status, 200, put.text);
    const m = createIdentityManager({ apiUrl: cp.apiUrl, joinToken: await newToken('shop', 'web') });
    const s = await m.start();
    m.close();
    const life = s.notAfter.getTime() - Date.now();
    assert.ok(life > 0.9 * 3_600_000 && life <= 3_600_000, `lifetime ${life} ms`);
  });

  test('the trust domain comes from Mesh default at start', async () => {
    const data = join(dir, 'data-td');
    const store = await openFileStore(join(data, 'store'), { logger: createLogger('test', 'silent') });
    await store.put({ apiVersion: 'weft.dev/v1alpha1', kind: 'Mesh', metadata: { name: 'default' }, spec: { trustDomain: 'example.org', certificates: { workloadTTL: '24h' } } });
    await store.close();
    const other = await startControlPlane({ dataDir: data, apiAddr: '127.0.0.1:0', logLevel: 'silent' });
    try {
      assert.equal(other.ca.trustDomain, 'example.org');
      const token = await other.ca.ca.createJoinToken({ namespace: 'shop', serviceAccount: 'web' });
      const m = createIdentityManager({ apiUrl: other.apiUrl, joinToken: token });
      const s = await m.start();
      m.close();
      assert.equal(s.spiffeId, 'spiffe://example.org/ns/shop/sa/web');
    } finally {
      await other.close();
    }
  });
});
