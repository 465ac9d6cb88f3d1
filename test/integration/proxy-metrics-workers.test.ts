// A proxy with two node:cluster workers: the primary's /metrics sums the workers'
// Istio-style series (histograms included), both workers append JSON lines to the one
// access log file, and SIGUSR1 to the primary (logrotate) makes the workers reopen it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { hcmTelemetry } from '../../src/control/xds/telemetry.js';
import type { Resource } from '../../src/api/types.js';
import type { MeshSpec } from '../../src/api/mesh/mesh.js';
import { call, listener, routeConfig, staticCluster, startUpstream, waitFor, type Upstream } from '../fixtures/proxy/helpers.js';

const N = 40;
let dir: string;
let logPath: string;
let app: Upstream;
let proxy: Proxy;

function mesh(path: string): Resource<MeshSpec> {
  return {
    apiVersion: 'weft.dev/v1alpha1', kind: 'Mesh', metadata: { name: 'default' },
    spec: { trustDomain: 'cluster.local', mtls: { mode: 'PERMISSIVE' }, certificates: { workloadTTL: '24h' }, tracing: { sampling: 1 }, accessLog: { format: 'json', path }, outboundPolicy: 'ALLOW_ANY' },
  };
}

async function lines(path: string): Promise<Record<string, unknown>[]> {
  const text = existsSync(path) ? await readFile(path, 'utf8') : '';
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-metrics-workers-'));
  logPath = join(dir, 'access.log');
  app = await startUpstream('app');
  proxy = await startProxy({
    adminAddr: '127.0.0.1:0', logLevel: 'silent', concurrency: 2,
    node: { id: 'n1', metadata: { WEFT_SERVICE: 'catalog', WEFT_NAMESPACE: 'shop', WEFT_WORKLOAD_NAME: 'catalog-1' } },
    bootstrap: {
      static_resources: {
        listeners: [{
          ...listener('inbound', { route_config: routeConfig('in', [{ name: 'in', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }]) }, 0, hcmTelemetry(mesh(logPath), 'inbound')),
          traffic_direction: 'INBOUND',
        }],
        clusters: [staticCluster('app', [app.port])],
      },
    },
  });
});

after(async () => {
  await proxy?.close();
  await app?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('metrics and access logs with workers', () => {
  test('the primary sums the workers; one log file, whole lines', async () => {
    const port = proxy.listenerPort('inbound')!;
    // A fresh connection per request: node:cluster hands them to both workers.
    for (let i = 0; i < N; i++) assert.equal((await call(port, `/r/${i}`, { agent: false })).status, 200);
    const text = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
    const want = 'reporter="destination",source_workload="unknown",source_namespace="unknown",source_principal="unknown",destination_service="catalog.shop",destination_workload="catalog-1",destination_namespace="shop",destination_principal="unknown",connection_security_policy="none",response_code="200",response_flags="-",grpc_response_status=""';
    assert.match(text, new RegExp(`^weft_requests_total\\{${want.replace(/[|]/g, '\\$&')}\\} ${N}$`, 'm'));
    assert.match(text, new RegExp(`^weft_request_duration_milliseconds_count\\{${want}\\} ${N}$`, 'm'));
    assert.match(text, new RegExp(`^weft_request_duration_milliseconds_bucket\\{${want},le="\\+Inf"\\} ${N}$`, 'm'));
    const workers = (await (await fetch(`${proxy.adminUrl}/workers`)).json()) as { workers: { pid: number }[] };
    assert.equal(workers.workers.length, 2);
    const got = await waitFor('every line written', async () => { const l = await lines(logPath); return l.length === N ? l : undefined; });
    assert.deepEqual(got.map((l) => l.path).sort(), Array.from({ length: N }, (_, i) => `/r/${i}`).sort());
    assert.ok(got.every((l) => l.direction === 'inbound' && l.status === 200));
  });

  test('SIGUSR1 to the primary: the workers reopen the file', async () => {
    const rotated = `${logPath}.1`;
    await rename(logPath, rotated);
    process.kill(process.pid, 'SIGUSR1');
    const port = proxy.listenerPort('inbound')!;
    const agent = new Agent({ keepAlive: false });
    // Until both workers have reopened, a request may still land in the rotated file; bounded by waitFor.
    await waitFor('requests logged to the new file', async () => {
      await call(port, '/after', { agent });
      return (await lines(logPath)).length > 0;
    });
    assert.equal((await lines(rotated)).length, N + (await lines(rotated)).filter((l) => l.path === '/after').length);
    assert.ok((await lines(logPath)).every((l) => l.path === '/after'));
    agent.destroy();
  });
});
