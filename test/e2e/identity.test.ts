// Workload identity with the built binary: `weft control`, `weft token create`,
// then `weft proxy --token T --api URL`, which gets its certificate before it
// starts and shows it at its admin `/certs`. Readiness is a printed line; no sleeps.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killAll, runWeft, startWeft, stderrTails, stop } from './helpers/procs.js';

const CONTROL_READY = /^weft control ready: api=(\S+) xds=(\S+) data=(\S+)$/;
const PROXY_READY = /^weft proxy ready: admin=(\S+) outbound=(\S+) node=(\S+)$/;

let tmp: string;
let dataDir: string;
let apiUrl: string;
let xdsAddr: string;
let failed = false;

async function weft(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runWeft([...args, '--server', apiUrl], { home: tmp });
}

function proxyArgs(extra: readonly string[]): string[] {
  return ['proxy', '--xds', xdsAddr, '--service', 'web', '--namespace', 'shop', '--admin-addr', '127.0.0.1:0', '--outbound-addr', '127.0.0.1:0', '--inbound-addr', '127.0.0.1:0', '--log-level', 'warn', ...extra];
}

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'weft-identity-e2e-'));
  dataDir = join(tmp, 'data');
  const c = await startWeft('weft control', ['control', '--data-dir', dataDir, '--api-addr', '127.0.0.1:0', '--xds-addr', '127.0.0.1:0', '--log-level', 'warn'], CONTROL_READY, { home: tmp });
  apiUrl = c.match[1]!;
  xdsAddr = c.match[2]!;
});

after(async () => {
  const tails = failed ? stderrTails() : '';
  if (tails !== '') process.stdout.write(tails.replace(/^/gm, '# ') + '\n');
  await killAll();
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
});

describe('weft token create and weft proxy --token', { concurrency: false }, () => {
  test('token create needs the admin token', async () => {
    const r = await weft(['token', 'create', '--namespace', 'shop', '--service-account', 'web']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /^error: .*(token|Authorization)/im);
  });

  test('the proxy gets its SVID at start and shows it at /certs', async () => {
    try {
      const created = await weft(['--data-dir', dataDir, 'token', 'create', '--namespace', 'shop', '--service-account', 'web', '--ttl', '1h']);
      assert.equal(created.code, 0, created.stderr);
      const token = created.stdout.trim();
      assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);

      const json = await weft(['--data-dir', dataDir, 'token', 'create', '--namespace', 'shop', '--service-account', 'web', '-o', 'json']);
      assert.equal(json.code, 0, json.stderr);
      assert.equal((JSON.parse(json.stdout) as { spiffeId: string }).spiffeId, 'spiffe://cluster.local/ns/shop/sa/web');

      const p = await startWeft('weft proxy web', proxyArgs(['--token', token, '--api', apiUrl]), PROXY_READY, { home: tmp });
      const admin = p.match[1]!;
      assert.match(p.run.stdout(), /^weft proxy identity: spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web serial=[0-9a-f]+ expires=\S+$/m);

      const res = await fetch(`${admin}/certs`);
      assert.equal(res.status, 200);
      const body = (await res.json()) as { certificates: { spiffeId: string; certificate: { serialNumber: string; notAfter: string; uriSans: string[] } }[] };
      assert.equal(body.certificates.length, 1);
      const c = body.certificates[0]!;
      assert.equal(c.spiffeId, 'spiffe://cluster.local/ns/shop/sa/web');
      assert.deepEqual(c.certificate.uriSans, ['spiffe://cluster.local/ns/shop/sa/web']);
      assert.match(c.certificate.serialNumber, /^[0-9a-f]{16,}$/);
      const life = Date.parse(c.certificate.notAfter) - Date.now();
      assert.ok(life > 23 * 3_600_000 && life <= 24 * 3_600_000, `expires in ${life} ms`);
      assert.doesNotMatch(JSON.stringify(body), /PRIVATE KEY/);

      // The serial is one the control plane issued: its bundle verifies nothing else, so check the issuer matches the root.
      const bundle = await (await fetch(`${apiUrl}/ca/bundle`)).text();
      assert.match(new X509Certificate(bundle).subject, /Weft Root CA cluster\.local/);
      assert.equal(await stop(p.run), 0);
    } catch (e) {
      failed = true;
      throw e;
    }
  });

  test('a refused token stops the proxy with the reason', async () => {
    const part = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
    const forged = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ ns: 'shop', sa: 'web', iss: 'weft', aud: 'weft-join', exp: 4_000_000_000, jti: 'x' })}.${'A'.repeat(43)}`;
    const r = await runWeft(proxyArgs(['--token', forged, '--api', apiUrl]), { home: tmp, timeoutMs: 20_000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /^error: .*join token refused/m);
    assert.doesNotMatch(r.stdout, /weft proxy ready/);
  });

  test('--api without --token is a usage error', async () => {
    const r = await runWeft(proxyArgs(['--api', apiUrl]), { home: tmp });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--api/);
  });
});
