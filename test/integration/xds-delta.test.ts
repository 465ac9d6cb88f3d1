import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { startXdsServer, type XdsServerHandle } from '../../src/control/xds/xds-server.js';
import type { ConfigStore } from '../../src/store/types.js';
import { adsServices } from '../../src/xds/protos.js';
import { jsonToStruct } from '../../src/control/registry/node-metadata.js';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER } from '../../src/xds/type-urls.js';
import { eventually, service, silent, tempStore, workload } from './xds-helpers.js';

interface DeltaResponse {
  system_version_info?: string;
  resources?: { name: string; version: string; resource: Record<string, unknown> }[];
  type_url: string;
  removed_resources?: string[];
  nonce: string;
}

interface DeltaRequest {
  type_url: string;
  resource_names_subscribe?: string[];
  resource_names_unsubscribe?: string[];
  initial_resource_versions?: Record<string, string>;
  response_nonce?: string;
  error_detail?: { code: number; message: string };
}

/** A DeltaAggregatedResources client speaking the protocol by hand. */
class RawDeltaClient {
  private readonly client: grpc.Client & { DeltaAggregatedResources(): grpc.ClientDuplexStream<unknown, DeltaResponse> };
  private call: grpc.ClientDuplexStream<unknown, DeltaResponse>;
  private readonly queue: DeltaResponse[] = [];
  private waiters: (() => void)[] = [];
  private first = true;

  constructor(
    address: string,
    private readonly nodeId: string,
    private readonly metadata: Record<string, unknown> = {},
  ) {
    const { AdsClient } = adsServices();
    this.client = new AdsClient(address, grpc.credentials.createInsecure()) as unknown as RawDeltaClient['client'];
    this.call = this.open();
  }

  private open(): grpc.ClientDuplexStream<unknown, DeltaResponse> {
    const call = this.client.DeltaAggregatedResources();
    this.first = true;
    call.on('data', (r: DeltaResponse) => {
      this.queue.push(r);
      for (const w of this.waiters.splice(0)) w();
    });
    call.on('error', () => {});
    return call;
  }

  send(req: DeltaRequest): void {
    const msg: Record<string, unknown> = { ...req };
    if (this.first) {
      msg.node = { id: this.nodeId, locality: {}, user_agent_name: 'weft-test', metadata: jsonToStruct(this.metadata) };
      this.first = false;
    }
    this.call.write(msg);
  }

  ack(r: DeltaResponse): void {
    this.send({ type_url: r.type_url, response_nonce: r.nonce });
  }

  async next(typeUrl?: string, timeoutMs = 5000): Promise<DeltaResponse> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.queue.findIndex((r) => typeUrl === undefined || r.type_url === typeUrl);
      if (i >= 0) return this.queue.splice(i, 1)[0] as DeltaResponse;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${typeUrl ?? 'response'} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  pending(): DeltaResponse[] {
    return [...this.queue];
  }

  reconnect(): void {
    this.call.cancel();
    this.queue.length = 0;
    this.call = this.open();
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}

let store: ConfigStore;
let cleanup: () => Promise<void>;
let xds: XdsServerHandle;
const clients: RawDeltaClient[] = [];

function client(nodeId: string, meta: Record<string, unknown> = {}): RawDeltaClient {
  const c = new RawDeltaClient(xds.address, nodeId, meta);
  clients.push(c);
  return c;
}

const EDS_A = 'outbound|8080||a.default.svc.cluster.local';
const EDS_B = 'outbound|8080||b.default.svc.cluster.local';

function addresses(r: DeltaResponse, name: string): string[] {
  const cla = r.resources?.find((x) => x.name === name)?.resource as { endpoints?: { lb_endpoints: { endpoint: { address: { socket_address: { address: string } } } }[] }[] } | undefined;
  return (cla?.endpoints ?? []).flatMap((g) => g.lb_endpoints.map((e) => e.endpoint.address.socket_address.address)).sort();
}

/**
 * A ping through the same stream: once the server has answered a later
 * request, it has handled the earlier ones, so "nothing pending" then means
 * nothing was sent for them (no sleeping).
 */
async function barrier(c: RawDeltaClient, name: string): Promise<void> {
  c.send({ type_url: LISTENER, resource_names_subscribe: [name] });
  const r = await c.next(LISTENER);
  assert.deepEqual(r.removed_resources, [name], 'the ping names a listener that does not exist');
}

before(async () => {
  ({ store, cleanup } = await tempStore());
  await store.putMany([
    service('a', [{ port: 8080, protocol: 'http' }], { app: 'a' }),
    service('b', [{ port: 8080, protocol: 'http' }], { app: 'b' }),
    workload('a-1', '10.0.0.1', { app: 'a' }),
    workload('b-1', '10.0.1.1', { app: 'b' }),
  ]);
  xds = await startXdsServer({ store, addr: '127.0.0.1:0', log: silent, debounceMs: 10 });
});

after(async () => {
  for (const c of clients) c.close();
  await xds.close();
  await cleanup();
});

test('delta: wildcard CDS, EDS by name; one endpoint change sends just that resource; a delete sends removed_resources', async () => {
  const c = client('delta-1');
  c.send({ type_url: CLUSTER });
  const cds = await c.next(CLUSTER);
  assert.deepEqual(cds.resources?.map((r) => r.name).sort(), [EDS_A, EDS_B]);
  assert.ok(cds.resources?.every((r) => r.version !== ''), 'per-resource versions');
  assert.ok(cds.system_version_info);
  c.ack(cds);
  c.send({ type_url: CLUSTER_LOAD_ASSIGNMENT, resource_names_subscribe: [EDS_A, EDS_B] });
  const eds = await c.next(CLUSTER_LOAD_ASSIGNMENT);
  assert.deepEqual(eds.resources?.map((r) => r.name).sort(), [EDS_A, EDS_B]);
  assert.deepEqual(addresses(eds, EDS_A), ['10.0.0.1']);
  c.ack(eds);
  await eventually(() => xds.ads.listClients().find((x) => x.nodeId === 'delta-1')?.types.EDS?.ackedVersion === eds.system_version_info, 'EDS ACK recorded');
  assert.equal(xds.ads.listClients().find((x) => x.nodeId === 'delta-1')?.delta, true);

  await store.put(workload('a-2', '10.0.0.2', { app: 'a' }));
  const upd = await c.next(CLUSTER_LOAD_ASSIGNMENT);
  assert.deepEqual(upd.resources?.map((r) => r.name), [EDS_A], 'only the changed ClusterLoadAssignment');
  assert.deepEqual(addresses(upd, EDS_A), ['10.0.0.1', '10.0.0.2']);
  assert.deepEqual(upd.removed_resources ?? [], []);
  c.ack(upd);

  await store.delete({ kind: 'Service', namespace: 'default', name: 'b' });
  const cdsDel = await c.next(CLUSTER);
  assert.deepEqual(cdsDel.resources ?? [], []);
  assert.deepEqual(cdsDel.removed_resources, [EDS_B]);
  const edsDel = await c.next(CLUSTER_LOAD_ASSIGNMENT);
  assert.deepEqual(edsDel.removed_resources, [EDS_B]);
  assert.deepEqual(edsDel.resources ?? [], []);
});

test('delta: a NACK is recorded in listClients() and the NACKed version is not resent', async () => {
  const c = client('delta-nack');
  c.send({ type_url: CLUSTER });
  const r1 = await c.next(CLUSTER);
  c.send({ type_url: CLUSTER, response_nonce: r1.nonce, error_detail: { code: 3, message: 'bad cluster' } });
  const st = await eventually(() => xds.ads.listClients().find((x) => x.nodeId === 'delta-nack' && x.types.CDS?.lastNack), 'NACK recorded');
  assert.equal(st.types.CDS?.lastNack?.message, 'bad cluster');
  assert.equal(st.types.CDS?.lastNack?.version, r1.system_version_info);
  assert.equal(st.types.CDS?.ackedVersion, undefined);
  await barrier(c, 'nack-ping');
  assert.deepEqual(c.pending().filter((r) => r.type_url === CLUSTER), [], 'nothing resent after the NACK');
});

test('delta: a reconnect with initial_resource_versions gets nothing it already has; only what changed', async () => {
  const c = client('delta-re');
  c.send({ type_url: CLUSTER });
  const cds = await c.next(CLUSTER);
  c.ack(cds);
  c.send({ type_url: CLUSTER_LOAD_ASSIGNMENT, resource_names_subscribe: [EDS_A] });
  const eds = await c.next(CLUSTER_LOAD_ASSIGNMENT);
  c.ack(eds);
  const have = (r: DeltaResponse): Record<string, string> => Object.fromEntries((r.resources ?? []).map((x) => [x.name, x.version]));

  c.reconnect();
  c.send({ type_url: CLUSTER, initial_resource_versions: have(cds) });
  c.send({ type_url: CLUSTER_LOAD_ASSIGNMENT, resource_names_subscribe: [EDS_A], initial_resource_versions: have(eds) });
  await barrier(c, 're-ping-1');
  // The first answer of each type on the new stream comes, empty: "you are up to date".
  const resumed = c.pending().filter((r) => r.type_url !== LISTENER);
  assert.deepEqual(resumed.map((r) => [r.type_url, r.resources ?? [], r.removed_resources ?? []]), [[CLUSTER, [], []], [CLUSTER_LOAD_ASSIGNMENT, [], []]], 'nothing unchanged is sent again');
  for (const r of resumed) c.ack(r);

  // Reconnect claiming a stale version of one resource: that one (only) comes.
  c.reconnect();
  c.send({ type_url: CLUSTER, initial_resource_versions: have(cds) });
  c.send({ type_url: CLUSTER_LOAD_ASSIGNMENT, resource_names_subscribe: [EDS_A], initial_resource_versions: { [EDS_A]: 'stale' } });
  const again = await c.next(CLUSTER_LOAD_ASSIGNMENT);
  assert.deepEqual(again.resources?.map((r) => r.name), [EDS_A]);
  await barrier(c, 're-ping-2');
  assert.deepEqual(c.pending().filter((r) => r.type_url === CLUSTER).map((r) => r.resources ?? []), [[]], 'CDS: only the empty first answer');
});

test('delta: unsubscribe stops updates; subscribing a name that does not exist answers removed_resources, then the resource when it appears', async () => {
  const c = client('delta-sub');
  const late = 'outbound|9000||late.default.svc.cluster.local';
  c.send({ type_url: CLUSTER_LOAD_ASSIGNMENT, resource_names_subscribe: [EDS_A, late] });
  const r1 = await c.next(CLUSTER_LOAD_ASSIGNMENT);
  assert.deepEqual(r1.resources?.map((r) => r.name), [EDS_A]);
  assert.deepEqual(r1.removed_resources, [late]);
  c.ack(r1);
  c.send({ type_url: CLUSTER_LOAD_ASSIGNMENT, resource_names_unsubscribe: [EDS_A] });
  await store.putMany([service('late', [{ port: 9000, protocol: 'http' }], { app: 'late' }), workload('late-1', '10.0.2.1', { app: 'late' }), workload('a-3', '10.0.0.3', { app: 'a' })]);
  // The three writes may land in one rebuild or two: read until the endpoint shows.
  for (;;) {
    const r2 = await c.next(CLUSTER_LOAD_ASSIGNMENT);
    assert.deepEqual(r2.resources?.map((r) => r.name), [late], 'the unsubscribed one is not sent');
    c.ack(r2);
    if (addresses(r2, late).includes('10.0.2.1')) break;
  }
});
