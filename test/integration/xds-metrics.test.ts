import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import { startXdsServer, type XdsServerHandle } from '../../src/control/xds/xds-server.js';
import { createControlMetrics } from '../../src/control/http/metrics.js';
import { jsonToStruct } from '../../src/control/registry/node-metadata.js';
import type { ConfigStore } from '../../src/store/types.js';
import { adsServices } from '../../src/xds/protos.js';
import { CLUSTER } from '../../src/xds/type-urls.js';
import { eventually, RawAdsClient, service, silent, tempStore, type DiscoveryResponse } from './xds-helpers.js';

/**
 * The control plane's xDS metrics, read from its real Prometheus registry
 * (createControlMetrics, as /metrics serves it) while real gRPC streams on
 * loopback subscribe, ACK and NACK: pushes and NACKs per type, connected
 * clients per kind, and the change → ACK convergence histogram.
 */

let store: ConfigStore;
let cleanup: () => Promise<void>;
let xds: XdsServerHandle;
let metrics: Registry;
const closers: (() => void)[] = [];

before(async () => {
  ({ store, cleanup } = await tempStore());
  await store.put(service('catalog', [{ port: 8080 }], { app: 'catalog' }));
  xds = await startXdsServer({ store, addr: '127.0.0.1:0', log: silent, debounceMs: 20 });
  metrics = createControlMetrics({ store, xds: xds.ads });
});

after(async () => {
  for (const c of closers) c();
  await xds.close();
  await cleanup();
});

/** A sample's value from the Prometheus text output (`name{labels} value`); 0 when absent. */
async function sample(series: string): Promise<number> {
  const text = await metrics.metrics();
  for (const line of text.split('\n')) {
    const i = line.lastIndexOf(' ');
    if (line.slice(0, i) === series) return Number(line.slice(i + 1));
  }
  return 0;
}

/** A SotW stream that ACKs every response it gets (a well-behaved client). */
function ackingSotw(nodeId: string): { responses: DiscoveryResponse[] } {
  const c = new RawAdsClient(xds.address, nodeId);
  closers.push(() => c.close());
  const responses: DiscoveryResponse[] = [];
  c.send({ type_url: CLUSTER, resource_names: [] });
  void (async () => {
    while (!c.ended) {
      const r = await c.next(CLUSTER, 200).catch(() => undefined);
      if (r === undefined) continue;
      responses.push(r);
      c.ack(r);
    }
  })();
  return { responses };
}

interface DeltaResponse {
  type_url: string;
  nonce: string;
  resources: { name: string }[];
}

/**
 * A raw stream that identifies as proxyless gRPC (user_agent_name "gRPC ...",
 * as grpc-js-xds sends) and ACKs; `delta` picks DeltaAggregatedResources.
 */
function ackingRaw(nodeId: string, delta: boolean): { responses: unknown[] } {
  const { AdsClient } = adsServices();
  const client = new AdsClient(xds.address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    StreamAggregatedResources(): grpc.ClientDuplexStream<unknown, DiscoveryResponse>;
    DeltaAggregatedResources(): grpc.ClientDuplexStream<unknown, DeltaResponse>;
  };
  const call = delta ? client.DeltaAggregatedResources() : client.StreamAggregatedResources();
  closers.push(() => {
    call.cancel();
    client.close();
  });
  const responses: unknown[] = [];
  call.on('error', () => undefined);
  call.on('data', (r: DiscoveryResponse | DeltaResponse) => {
    responses.push(r);
    if (delta) call.write({ type_url: r.type_url, response_nonce: r.nonce });
    else call.write({ type_url: r.type_url, resource_names: [], version_info: (r as DiscoveryResponse).version_info, response_nonce: r.nonce });
  });
  call.write({ node: { id: nodeId, locality: {}, metadata: jsonToStruct({}), user_agent_name: delta ? 'weft-test' : 'gRPC Node Pure JS' }, type_url: CLUSTER });
  return { responses };
}

test('pushes per type, clients per kind, convergence per affected client, NACKs per type', async () => {
  const sotw = [ackingSotw('metrics-a'), ackingSotw('metrics-b'), ackingSotw('metrics-c')];
  const grpcClient = ackingRaw('metrics-grpc', false);
  const deltaClient = ackingRaw('metrics-delta', true);
  const all = [...sotw.map((c) => c.responses), grpcClient.responses, deltaClient.responses];
  // Every client has its first CDS response and has ACKed it (the server recorded the ACK).
  await eventually(() => all.every((r) => r.length >= 1), 'first CDS responses');
  await eventually(() => xds.ads.listClients().length === 5 && xds.ads.listClients().every((c) => c.types.CDS?.ackedVersion !== undefined), 'first ACKs recorded');

  assert.equal(await sample('weft_control_xds_connected_clients{kind="proxy"}'), 4);
  assert.equal(await sample('weft_control_xds_connected_clients{kind="grpc"}'), 1);
  assert.equal(await sample('weft_control_xds_clients'), 5);
  const cdsPushes = await sample('weft_control_xds_pushes_total{type="CDS"}');
  assert.ok(cdsPushes >= 5, `CDS pushes counted per type (${cdsPushes})`);
  // First responses are no change: nothing converged yet.
  const count0 = await sample('weft_control_xds_convergence_seconds_count');

  // A change every client sees: one convergence observation per client, once each has ACKed it.
  await store.put(service('inventory', [{ port: 9090 }], { app: 'inventory' }));
  await eventually(() => all.every((r) => r.length >= 2), 'CDS pushes of the change');
  const count1 = await eventually(async () => {
    const n = await sample('weft_control_xds_convergence_seconds_count');
    return n >= count0 + 5 ? n : undefined;
  }, 'five convergence observations');
  assert.equal(count1, count0 + 5, 'one observation per affected client');
  assert.ok(await sample('weft_control_xds_pushes_total{type="CDS"}') >= cdsPushes + 5);
  const sum = await sample('weft_control_xds_convergence_seconds_sum');
  assert.ok(sum > 0 && sum < 5 * 30, `convergence sum is plausible (${sum} s)`);
  // Buckets are cumulative and end with +Inf = count; the smallest is 1 ms, the largest 30 s.
  assert.equal(await sample('weft_control_xds_convergence_seconds_bucket{le="+Inf"}'), count1);
  assert.ok((await sample('weft_control_xds_convergence_seconds_bucket{le="30"}')) <= count1);
  assert.match(await metrics.metrics(), /^weft_control_xds_convergence_seconds_bucket\{le="0\.001"\} \d+$/m);
  assert.match(await metrics.metrics(), /^# TYPE weft_control_xds_convergence_seconds histogram$/m);

  // A NACK: counted under its type; that client does not converge on the change it rejected.
  const nacks0 = await sample('weft_control_xds_nacks_total{type="CDS"}');
  const naysayer = new RawAdsClient(xds.address, 'metrics-nack');
  closers.push(() => naysayer.close());
  naysayer.send({ type_url: CLUSTER, resource_names: [] });
  const r1 = await naysayer.next(CLUSTER);
  naysayer.ack(r1);
  await eventually(() => xds.ads.listClients().find((c) => c.nodeId === 'metrics-nack')?.types.CDS?.ackedVersion === r1.version_info, 'ACK of the naysayer');
  const before = await sample('weft_control_xds_convergence_seconds_count');
  await store.put(service('rejected', [{ port: 7070 }], { app: 'rejected' }));
  const r2 = await naysayer.next(CLUSTER);
  naysayer.send({ type_url: CLUSTER, version_info: r1.version_info, response_nonce: r2.nonce, error_detail: { code: 3, message: 'cluster rejected: unsupported lb_policy' } });
  await eventually(async () => (await sample('weft_control_xds_nacks_total{type="CDS"}')) === nacks0 + 1, 'NACK counted under CDS');
  // The five ACKing clients converge on this change too; the naysayer does not.
  await eventually(async () => (await sample('weft_control_xds_convergence_seconds_count')) === before + 5, 'the five ACKing clients converged');
  await new Promise<void>((resolve) => setImmediate(resolve));
  assert.equal(await sample('weft_control_xds_convergence_seconds_count'), before + 5);
  assert.equal(await sample('weft_control_xds_nacks_total{type="EDS"}'), 0);

  // A client that leaves is no longer counted.
  naysayer.close();
  await eventually(async () => (await sample('weft_control_xds_connected_clients{kind="proxy"}')) === 4, 'disconnect counted');
});
