// The whole path from a Mesh resource to what a proxy records: a real control plane
// (HTTP API + xDS), a Mesh applied with a file access log and an OTLP collector, and
// a Weft proxy that registers its workload over ADS. The proxy's outbound HCM (as the
// control plane generates it) writes JSON lines, exports CLIENT spans, and labels its
// metrics with the Workload name the control plane registered.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IExportTraceServiceRequest, ISpan } from '@opentelemetry/otlp-transformer/build/src/trace/internal-types.js';
import { startControlPlane, type ControlPlane } from '../../src/control/control-plane.js';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { createBackoff } from '../../src/proxy/xds-client/backoff.js';
import { flushAccessLogs } from '../../src/proxy/observability/sinks.js';
import { shutdownTracing, tracingReady } from '../../src/proxy/observability/tracing.js';
import { call, startUpstream, waitFor, type Upstream } from '../fixtures/proxy/helpers.js';

let dir: string;
let logPath: string;
let cp: ControlPlane;
let backend: Upstream;
let web: Proxy;
let outPort: number;
let collector: Server;
const spans: { service: string; span: ISpan }[] = [];

async function apply(yaml: string): Promise<void> {
  const r = await fetch(`${cp.apiUrl}/apply`, { method: 'POST', headers: { authorization: `Bearer ${cp.adminToken}`, 'content-type': 'application/yaml' }, body: yaml });
  assert.equal(r.status, 200, await r.text());
}

const get = (path: string, headers: Record<string, string> = {}): ReturnType<typeof call> => call(outPort, path, { headers: { host: 'backend.default', ...headers } });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-metrics-cp-'));
  logPath = join(dir, 'access.log');
  collector = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as IExportTraceServiceRequest;
      for (const rs of body.resourceSpans ?? []) {
        const service = rs.resource?.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
        for (const ss of rs.scopeSpans) for (const span of ss.spans ?? []) spans.push({ service, span });
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((r) => collector.listen(0, '127.0.0.1', () => r()));
  backend = await startUpstream('backend');
  cp = await startControlPlane({ dataDir: join(dir, 'data'), apiAddr: '127.0.0.1:0', logLevel: 'silent', xdsDebounceMs: 20 });
  await apply(`apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata: {name: default}
spec:
  mtls: {mode: DISABLE}
  accessLog: {format: json, path: ${JSON.stringify(logPath)}}
  tracing: {sampling: 100, collector: {endpoint: "http://127.0.0.1:${(collector.address() as AddressInfo).port}"}}
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: backend, namespace: default}
spec:
  selector: {app: backend}
  ports: [{name: http, port: 80, targetPort: ${backend.port}, protocol: http}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: backend-0, namespace: default, labels: {app: backend}}
spec:
  address: 127.0.0.1
  ports: [{port: ${backend.port}}]
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 1, protocol: http}]
`);
  web = await startProxy({
    adminAddr: '127.0.0.1:0', logLevel: 'silent', xdsAddresses: [cp.xdsAddress], xdsBackoff: createBackoff(20, 200),
    workload: { service: 'web', namespace: 'default', address: '127.0.0.1' },
    node: { metadata: { WEFT_WORKLOAD_NAME: 'web-7' } },
    listenerAddresses: { outbound: '127.0.0.1:0' },
    telemetry: false,
  });
  outPort = await waitFor('outbound listener', () => web.listenerPort('outbound'));
  await waitFor('backend reachable', async () => (await get('/warm')).status === 200 || undefined);
});

after(async () => {
  await web?.close();
  await shutdownTracing();
  await cp?.close();
  await backend?.close();
  await new Promise<void>((r) => collector.close(() => r()));
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('Mesh telemetry settings through the control plane', () => {
  test('metrics carry the registered workload and the Service host', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await get('/items')).status, 200);
    const text = await (await fetch(`${web.adminUrl}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('weft_requests_total{') && l.includes('destination_service="backend.default"') && l.includes('response_code="200"'));
    assert.ok(line, text);
    assert.match(line, /reporter="source",source_workload="web-7",source_namespace="default"/);
    assert.match(line, /destination_namespace="default"/);
    assert.ok(Number(line.slice(line.lastIndexOf(' ') + 1)) >= 5);
  });

  test('access log lines in the Mesh\'s file, spans at the Mesh\'s collector', async () => {
    const traceId = '11112222333344445555666677778888';
    // The earlier requests started loading the OpenTelemetry packages; wait until they are in.
    await tracingReady();
    assert.equal((await get('/traced', { traceparent: `00-${traceId}-0102030405060708-01` })).status, 200);
    const span = await waitFor('the CLIENT span', () => spans.find((s) => s.span.traceId === traceId), 15_000);
    assert.equal(span.service, 'web.default');
    assert.equal(span.span.parentSpanId, '0102030405060708');
    assert.equal(backend.seen.at(-1)!.headers.traceparent, `00-${traceId}-${String(span.span.spanId)}-01`);
    await flushAccessLogs();
    assert.ok(existsSync(logPath));
    const lines = (await readFile(logPath, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const traced = lines.find((l) => l.path === '/traced')!;
    assert.equal(traced.trace_id, traceId);
    assert.equal(traced.status, 200);
    assert.equal(traced.direction, 'outbound');
    assert.match(String(traced.upstream_cluster), /^outbound\|80\|\|backend\.default/);
    assert.equal(traced.upstream_host, `127.0.0.1:${backend.port}`);
  });
});
