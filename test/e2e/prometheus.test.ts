// A real Prometheus (/usr/bin/prometheus, Debian package `prometheus`) scrapes two
// proxies every second: "web" (single process) and "catalog" (two node:cluster
// workers, whose counts the primary's /metrics sums). After a known number of
// requests, PromQL through Prometheus's HTTP API returns those counts and label values.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { call, endpoint, listener, routeConfig, staticCluster, startUpstream, waitFor, type Upstream } from '../fixtures/proxy/helpers.js';

const PROMETHEUS = '/usr/bin/prometheus';
const OK = 6;
const UH = 3;

let dir: string;
let prom: ChildProcess | undefined;
let promExited: Promise<void> | undefined;
let promUrl: string;
let app: Upstream;
let web: Proxy;
let catalog: Proxy;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

interface Sample { metric: Record<string, string>; value: [number, string] }

async function query(q: string): Promise<Sample[]> {
  const r = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`);
  const body = (await r.json()) as { status: string; data: { resultType: string; result: Sample[] }; error?: string };
  assert.equal(body.status, 'success', body.error);
  return body.data.result;
}

function hostPort(url: string): string {
  return new URL(url).host;
}

before(async () => {
  if (!existsSync(PROMETHEUS)) throw new Error(`${PROMETHEUS} is missing: apt-get install prometheus (.ci/run installs it)`);
  dir = await mkdtemp(join(tmpdir(), 'weft-prom-'));
  app = await startUpstream('catalog-app');
  catalog = await startProxy({
    adminAddr: '127.0.0.1:0', logLevel: 'silent', concurrency: 2,
    node: { id: 'sidecar~127.0.0.1~catalog.shop', metadata: { WEFT_SERVICE: 'catalog', WEFT_NAMESPACE: 'shop', WEFT_WORKLOAD_NAME: 'catalog-1' } },
    bootstrap: {
      static_resources: {
        listeners: [{
          ...listener('inbound', { route_config: routeConfig('in', [{ name: 'in', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }]) }),
          traffic_direction: 'INBOUND',
        }],
        clusters: [staticCluster('app', [app.port])],
      },
    },
  });
  const inboundPort = catalog.listenerPort('inbound')!;
  web = await startProxy({
    adminAddr: '127.0.0.1:0', logLevel: 'silent',
    node: { id: 'sidecar~127.0.0.1~web.shop', metadata: { WEFT_SERVICE: 'web', WEFT_NAMESPACE: 'shop', WEFT_WORKLOAD_NAME: 'web-1' } },
    bootstrap: {
      static_resources: {
        listeners: [{
          ...listener('outbound', { route_config: routeConfig('out', [
            { name: 'catalog', domains: ['catalog.shop'], routes: [{ match: { prefix: '/' }, route: { cluster: 'outbound|8080||catalog.shop' } }] },
            { name: 'ghost', domains: ['ghost.shop'], routes: [{ match: { prefix: '/' }, route: { cluster: 'outbound|9090||ghost.shop' } }] },
          ]) }),
          traffic_direction: 'OUTBOUND',
        }],
        clusters: [
          staticCluster('outbound|8080||catalog.shop', [inboundPort]),
          { name: 'outbound|9090||ghost.shop', type: 'STATIC', load_assignment: { cluster_name: 'outbound|9090||ghost.shop', endpoints: [{ lb_endpoints: [endpoint(inboundPort, { health_status: 'UNHEALTHY' })] }] } },
        ],
      },
    },
  });

  const port = await freePort();
  promUrl = `http://127.0.0.1:${port}`;
  const config = join(dir, 'prometheus.yml');
  await writeFile(config, [
    'global:',
    '  scrape_interval: 1s',
    '  evaluation_interval: 1s',
    'scrape_configs:',
    '  - job_name: weft-proxies',
    '    metrics_path: /metrics',
    '    static_configs:',
    `      - targets: ['${hostPort(web.adminUrl)}']`,
    '        labels: { proxy: web }',
    `      - targets: ['${hostPort(catalog.adminUrl)}']`,
    '        labels: { proxy: catalog }',
    '',
  ].join('\n'));
  const p = spawn(PROMETHEUS, [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  prom = p;
  p.once('error', () => {});
  let stderr = '';
  p.stderr!.setEncoding('utf8').on('data', (c: string) => { stderr = (stderr + c).slice(-4000); });
  promExited = new Promise((r) => p.once('exit', () => r()));
  await waitFor('prometheus ready', async () => {
    if (p.exitCode !== null) throw new Error(`prometheus exited (${p.exitCode}): ${stderr}`);
    try {
      return (await fetch(`${promUrl}/-/ready`)).status === 200;
    } catch {
      return false;
    }
  }, 30_000);
});

after(async () => {
  if (prom !== undefined && prom.exitCode === null) {
    prom.kill('SIGTERM');
    await promExited;
  }
  await web?.close();
  await catalog?.close();
  await app?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('Prometheus scrapes Istio-style proxy metrics', () => {
  test('PromQL returns the request counts and label values', async () => {
    const port = web.listenerPort('outbound')!;
    for (let i = 0; i < OK; i++) assert.equal((await call(port, '/items', { headers: { host: 'catalog.shop' } })).status, 200);
    for (let i = 0; i < UH; i++) assert.equal((await call(port, '/items', { headers: { host: 'ghost.shop' } })).status, 503);

    // Both targets up, and a scrape taken after the last request.
    const byReporter = await waitFor('a scrape with every request', async () => {
      const up = await query('sum(up{job="weft-proxies"})');
      if (Number(up[0]?.value[1] ?? 0) !== 2) return undefined;
      const r = await query('sum by (reporter, response_code, response_flags) (weft_requests_total)');
      const total = r.reduce((s, x) => s + Number(x.value[1]), 0);
      return total === 2 * OK + UH ? r : undefined;
    }, 30_000);
    const counts = Object.fromEntries(byReporter.map((s) => [`${s.metric.reporter}/${s.metric.response_code}/${s.metric.response_flags}`, Number(s.value[1])]));
    assert.deepEqual(counts, { 'source/200/-': OK, 'source/503/UH': UH, 'destination/200/-': OK });

    const dst = await query('weft_requests_total{reporter="destination"}');
    assert.equal(dst.length, 1, 'the two workers\' series are one series after the primary sums them');
    assert.equal(dst[0]!.metric.proxy, 'catalog');
    assert.equal(dst[0]!.metric.destination_workload, 'catalog-1');
    assert.equal(dst[0]!.metric.destination_service, 'catalog.shop');
    assert.equal(dst[0]!.metric.connection_security_policy, 'none');

    const src = await query('weft_requests_total{reporter="source",response_code="200"}');
    assert.equal(src.length, 1);
    assert.equal(src[0]!.metric.source_workload, 'web-1');
    assert.equal(src[0]!.metric.destination_service, 'catalog.shop');
    assert.equal(src[0]!.metric.destination_namespace, 'shop');

    const hist = await query('sum by (reporter) (weft_request_duration_milliseconds_count{response_code="200"})');
    assert.deepEqual(Object.fromEntries(hist.map((s) => [s.metric.reporter, Number(s.value[1])])), { source: OK, destination: OK });
    // Every request ends in some bucket; the histogram is well-formed enough for histogram_quantile.
    const p50 = await query('histogram_quantile(0.5, sum by (le) (weft_request_duration_milliseconds_bucket{reporter="source",response_code="200"}))');
    const v = Number(p50[0]?.value[1]);
    assert.ok(Number.isFinite(v) && v > 0 && v <= 30000, `p50 ${v}`);

    // Prometheus parsed every exposition without error.
    const targets = (await (await fetch(`${promUrl}/api/v1/targets`)).json()) as { data: { activeTargets: { health: string; lastError: string }[] } };
    for (const t of targets.data.activeTargets) assert.deepEqual({ health: t.health, lastError: t.lastError }, { health: 'up', lastError: '' });
  });
});
