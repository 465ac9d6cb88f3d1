// A mesh across three test hosts (network namespaces on one bridge, addresses
// 10.250.<run>.0/24 that this test assigns), all real processes:
//
//   host a: control plane (API and mTLS xDS on its host address) and the `web`
//           sidecar, the client (explicit mode: curl -x through its outbound listener)
//   host b: catalog-v1 instance + sidecar (join token → SVID; app on loopback only)
//   host c: catalog-v1 instance + sidecar, and catalog-v2 without a sidecar (a
//           Workload applied by hand, like Istio's WorkloadEntry)
//
// It shows mTLS between sidecars on different hosts, a header route (x-canary →
// v2), an authorization policy (only sa/web may call catalog-v1), and failover:
// host c's link is cut at the bridge and traffic keeps flowing, served by host b.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, childEnv } from './helpers/procs.js';
import { createTestNetwork, execIn, killAllInNs, netnsSkipReason, startHttpApp, startIn, type NsProcess, type TestHost, type TestNetwork } from '../helpers/netns.js';

const skip = netnsSkipReason();
if (skip !== undefined) console.log(`# multi-host e2e skipped: ${skip}`);

const CONTROL_READY = /^weft control ready: api=(\S+) xds=(\S+)/;
const PROXY_READY = /^weft proxy ready: admin=(\S+) outbound=(\S+) node=(\S+)$/;

describe('multi-host mesh in network namespaces', { skip }, () => {
  let net: TestNetwork;
  let a: TestHost;
  let b: TestHost;
  let c: TestHost;
  let tmp: string;
  let api: string;
  let xds: string;
  const procs: NsProcess[] = [];
  const env = (): NodeJS.ProcessEnv => childEnv(tmp);

  const weft = async (host: TestHost, args: string[]): Promise<string> => {
    const r = await execIn(host, process.execPath, [CLI, ...args, '--server', api, '--data-dir', join(tmp, 'data')], 30_000);
    assert.equal(r.code, 0, `weft ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  const apply = async (yaml: string): Promise<void> => {
    const file = join(tmp, `apply-${Date.now()}-${Math.random().toString(36).slice(2)}.yaml`);
    await writeFile(file, yaml);
    await weft(a, ['apply', '-f', file]);
  };

  /** A sidecar in explicit mode; its workload certificate comes from a join token for `sa`. */
  const startSidecar = async (host: TestHost, service: string, sa: string, ports: number[]): Promise<NsProcess> => {
    const token = (await weft(a, ['token', 'create', '--namespace', 'default', '--service-account', sa])).trim();
    // Until `weft proxy` sends it itself: the service account of its certificate.
    const boot = join(tmp, `bootstrap-${host.ns}.yaml`);
    await writeFile(boot, `node:\n  metadata: {WEFT_SERVICE_ACCOUNT: ${sa}}\n`);
    const r = await startIn(host, `proxy ${service}@${host.ns}`, process.execPath, [
      CLI, 'proxy', '--xds', xds, '--xds-tls', '--api', api, '--token', token, '--service', service, '--namespace', 'default',
      '--workload-address', host.address, ...(ports.length > 0 ? ['--workload-port', ports.join(',')] : []),
      '--admin-addr', '127.0.0.1:15000', '--outbound-addr', '127.0.0.1:15001', '--bootstrap', boot,
      '--concurrency', '1', '--log-level', 'warn',
    ], PROXY_READY, { env: env(), timeoutMs: 30_000 });
    procs.push(r.p);
    return r.p;
  };

  /** One request from a host's sidecar (explicit proxy mode); `who` is the app's answer or `STATUS FLAGS`. */
  const call = async (host: TestHost, url: string, headers: Record<string, string> = {}): Promise<string> => {
    const h = Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]);
    const r = await execIn(host, 'curl', ['-sS', '-m', '10', '-x', 'http://127.0.0.1:15001', '-w', '\n%{http_code}', ...h, url], 15_000);
    if (r.code !== 0) return `curl ${r.code} ${r.stderr.trim()}`;
    const body = r.stdout.slice(0, r.stdout.lastIndexOf('\n'));
    const status = r.stdout.slice(r.stdout.lastIndexOf('\n') + 1);
    return status === '200' ? body.trim() : `${status} ${body.trim()}`;
  };

  /** Calls until `want(answer)` holds (bounded): config and endpoints propagate asynchronously. */
  const callUntil = async (host: TestHost, url: string, want: (who: string) => boolean, headers: Record<string, string> = {}, tries = 100): Promise<string> => {
    let last = '';
    for (let i = 0; i < tries; i++) {
      last = await call(host, url, headers);
      if (want(last)) return last;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`no wanted answer from ${url} after ${tries} tries; last: ${last}`);
  };

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'weft-multihost-'));
    net = await createTestNetwork(['a', 'b', 'c']);
    [a, b, c] = net.hosts as [TestHost, TestHost, TestHost];
    const control = await startIn(a, 'control', process.execPath, [
      CLI, 'control', '--data-dir', join(tmp, 'data'), '--api-addr', `${a.address}:15020`, '--xds-tls-addr', `${a.address}:15012`, '--log-level', 'warn',
    ], CONTROL_READY, { env: env() });
    procs.push(control.p);
    api = control.match[1]!;
    // Sidecars on every host, host a's too, take xDS over mTLS with their workload
    // certificate; plaintext xDS stays on host a's loopback.
    xds = `${a.address}:15012`;
    await apply(`apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: catalog, namespace: default}
spec:
  selector: {app: catalog}
  ports: [{name: http, port: 80, targetPort: 8080, protocol: http}]
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: catalog-v1, namespace: default}
spec:
  selector: {weft.dev/service: catalog-v1}
  ports: [{name: http, port: 80, targetPort: 8080, protocol: http}]
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: catalog-v2, namespace: default}
spec:
  selector: {app: catalog-v2}
  ports: [{name: http, port: 80, targetPort: 9090, protocol: http}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: catalog-v2-0, namespace: default, labels: {app: catalog-v2}}
spec:
  address: ${c.address}
  ports: [{port: 9090}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: catalog, namespace: default}
spec:
  parentRefs: [{group: "", kind: Service, name: catalog, port: 80}]
  rules:
  - matches: [{headers: [{name: x-canary, value: "yes"}]}]
    backendRefs: [{name: catalog-v2, port: 80}]
  - backendRefs: [{name: catalog-v1, port: 80}]
---
apiVersion: weft.dev/v1alpha1
kind: BackendPolicy
metadata: {name: catalog-failover, namespace: default}
spec:
  targetRefs: [{kind: Service, name: catalog}, {kind: Service, name: catalog-v1}]
  connectionPool: {connectTimeout: 500ms}
  retry: {attempts: 3, perTryTimeout: 1s, retryOn: [connect-failure, reset, gateway-error]}
  outlierDetection: {consecutiveGatewayErrors: 1, interval: 1s, baseEjectionTime: 60s, maxEjectionPercent: 50}
`);
    // Apps on loopback only: nothing but their own sidecar's inbound listener reaches them.
    procs.push(await startHttpApp(b, 'v1@b', '127.0.0.1', 8080));
    procs.push(await startHttpApp(c, 'v1@c', '127.0.0.1', 8080));
    procs.push(await startHttpApp(c, 'v2@c', '0.0.0.0', 9090));
    await startSidecar(b, 'catalog-v1', 'catalog-v1', [8080]);
    await startSidecar(c, 'catalog-v1', 'catalog-v1', [8080]);
    await startSidecar(a, 'web', 'web', []);
  });

  after(async () => {
    await killAllInNs();
    await net?.teardown();
    if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
  });

  test('web on host a reaches catalog-v1 on hosts b and c, over mTLS, through their inbound listeners', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200 && seen.size < 2; i++) {
      const who = await call(a, 'http://catalog.default/');
      if (who.startsWith('v1@')) {
        // "from 127.0.0.1": the last hop was the instance's own sidecar.
        assert.match(who, /^v1@[bc] from 127\.0\.0\.1$/);
        seen.add(who.slice(0, 4));
      } else {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert.deepEqual([...seen].sort(), ['v1@b', 'v1@c']);
    const stats = (await execIn(a, 'curl', ['-sS', 'http://127.0.0.1:15000/stats'])).stdout;
    const handshakes = [...stats.matchAll(/^cluster\.outbound\|80\|\|catalog-v1\.default\.svc\.cluster\.local\.ssl\.handshake: (\d+)$/gm)].map((m) => Number(m[1]));
    assert.ok(handshakes.length === 1 && handshakes[0]! >= 2, `mTLS handshakes to catalog-v1 from web: ${handshakes.join(',')}`);
  });

  test('a header route sends x-canary: yes to catalog-v2 on host c', async () => {
    const who = await callUntil(a, 'http://catalog.default/', (w) => w.startsWith('v2@c'), { 'x-canary': 'yes' });
    assert.match(who, /^v2@c from 10\.250\./);
  });

  test('cutting host c off: traffic fails over to host b', async () => {
    await net.setLink(c, false);
    const answers: string[] = [];
    const started = Date.now();
    for (let i = 0; i < 30; i++) answers.push(await call(a, 'http://catalog.default/'));
    const ms = Date.now() - started;
    const ok = answers.filter((w) => w === 'v1@b from 127.0.0.1').length;
    console.log(`failover: ${ok}/30 answered by host b after the cut, in ${ms} ms; others: ${JSON.stringify(answers.filter((w) => w !== 'v1@b from 127.0.0.1'))}`);
    assert.equal(ok, 30, `answers after the cut: ${JSON.stringify(answers)}`);
    // The canary lives on host c only: with c gone it fails (and says so), it does not hang.
    const canary = await call(a, 'http://catalog.default/', { 'x-canary': 'yes' });
    assert.match(canary, /^50[34]/);
    await net.setLink(c, true);
  });

  test('authorization across hosts: only sa/web may call catalog-v1', async () => {
    await apply(`apiVersion: weft.dev/v1alpha1
kind: SecurityPolicy
metadata: {name: catalog-v1-callers, namespace: default}
spec:
  targetRefs: [{kind: Service, name: catalog-v1}]
  authorization:
    action: ALLOW
    rules:
    - from: [{principals: ["spiffe://cluster.local/ns/default/sa/web"]}]
`);
    // Host c's sidecar holds sa/catalog-v1: its calls to catalog-v1 (on b or c) are refused by the callee's RBAC.
    const who = await callUntil(c, 'http://catalog-v1.default/', (w) => w.startsWith('403')).catch((e: unknown) => {
      const nacks = procs.map((p) => p.stderr()).join('').split('\n').filter((l) => l.includes('NACK')).slice(-2).join('\n');
      throw new Error(`${String(e)}\nlast NACKs:\n${nacks}`);
    });
    assert.match(who, /^403/);
    assert.match(await call(a, 'http://catalog-v1.default/'), /^v1@[bc] from 127\.0\.0\.1$/);
  });

  void procs;
});
