// The proxy's ADS client against a fake control plane: node identity, LDS/CDS
// wildcard then RDS/EDS by name, ACK/NACK, keeping the last good config, and
// reconnecting (across several addresses) with backoff.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { startProxy, NODE_METADATA, type Proxy } from '../../src/proxy/proxy.js';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION } from '../../src/xds/type-urls.js';
import { createBackoff } from '../../src/proxy/xds-client/backoff.js';
import { call, cla, edsCluster, listener, routeConfig, startUpstream, waitFor, type Upstream } from '../fixtures/proxy/helpers.js';
import { startFakeAds, type AdsRequest, type FakeAds } from '../fixtures/proxy/fake-ads.js';

let up: Upstream;
let ads: FakeAds;
let proxy: Proxy;
let deadAddress: string;
const responses: { typeUrl: string; version: string; accepted: boolean; error?: string }[] = [];

const routes = (body?: string): Record<string, unknown> => routeConfig('outbound-routes', [{
  name: 'svc', domains: ['catalog.default'],
  routes: [{ match: { prefix: '/' }, ...(body === undefined ? { route: { cluster: 'catalog' } } : { direct_response: { status: 200, body: { inline_string: body } } }) }],
}]);

const ready = async (): Promise<boolean> => (await fetch(`${proxy.adminUrl}/ready`)).status === 200;
const lastOf = (typeUrl: string, pred: (r: AdsRequest) => boolean = () => true): AdsRequest | undefined =>
  [...ads.requests].reverse().find((r) => r.type_url === typeUrl && pred(r));

before(async () => {
  up = await startUpstream('catalog');
  ads = await startFakeAds();
  // A port with nothing listening: the client must move on to the next address.
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  deadAddress = `127.0.0.1:${(s.address() as AddressInfo).port}`;
  await new Promise<void>((r) => s.close(() => r()));

  ads.set(CLUSTER, [edsCluster('catalog')], 'c1');
  ads.set(CLUSTER_LOAD_ASSIGNMENT, [cla('catalog', [up.port])], 'e1');
  ads.set(LISTENER, [listener('outbound', { rds: { route_config_name: 'outbound-routes', config_source: { ads: {} } } })], 'l1');
  ads.set(ROUTE_CONFIGURATION, [routes()], 'r1');
  proxy = await startProxy({
    adminAddr: '127.0.0.1:0',
    logLevel: 'silent',
    xdsAddresses: [deadAddress, ads.address],
    xdsBackoff: createBackoff(20, 200),
    node: { id: 'sidecar~10.1.2.3~catalog-1.default', metadata: { [NODE_METADATA.service]: 'catalog', [NODE_METADATA.namespace]: 'default' } },
    onXdsResponse: (e) => responses.push(e),
  });
});

after(async () => {
  await proxy?.close();
  await ads?.close();
  await up?.close();
});

describe('ADS client', () => {
  test('/ready is 503 while no control plane has answered', async () => {
    const lonely = await startProxy({ adminAddr: '127.0.0.1:0', logLevel: 'silent', xdsAddresses: [deadAddress], xdsBackoff: createBackoff(20, 100) });
    try {
      assert.equal((await fetch(`${lonely.adminUrl}/ready`)).status, 503);
    } finally {
      await lonely.close();
    }
  });

  test('becomes ready after LDS, CDS, RDS and EDS arrive (after skipping a dead server)', async () => {
    await waitFor('/ready', ready, 15_000);
    const port = proxy.listenerPort('outbound');
    assert.ok(port !== undefined);
    const r = await call(port, '/items', { headers: { host: 'catalog.default' } });
    assert.equal(r.status, 200);
    assert.equal(r.json<{ name: string }>().name, 'catalog');
  });

  test('sends the node identity and metadata once per stream', () => {
    const withNode = ads.requests.filter((r) => r.node !== undefined);
    assert.equal(withNode.length, 1);
    assert.equal(withNode[0]!.node!.id, 'sidecar~10.1.2.3~catalog-1.default');
    assert.equal(withNode[0]!.node!.metadata!.fields![NODE_METADATA.service]!.stringValue, 'catalog');
  });

  test('subscribes LDS/CDS as wildcards and RDS/EDS by name, and ACKs with version + nonce', () => {
    assert.deepEqual(lastOf(LISTENER)!.resource_names ?? [], []);
    assert.deepEqual(lastOf(CLUSTER)!.resource_names ?? [], []);
    assert.deepEqual(lastOf(ROUTE_CONFIGURATION)!.resource_names, ['outbound-routes']);
    assert.deepEqual(lastOf(CLUSTER_LOAD_ASSIGNMENT)!.resource_names, ['catalog']);
    for (const [t, v] of [[LISTENER, 'l1'], [CLUSTER, 'c1'], [ROUTE_CONFIGURATION, 'r1'], [CLUSTER_LOAD_ASSIGNMENT, 'e1']] as const) {
      const ack = lastOf(t)!;
      assert.equal(ack.version_info, v, t);
      assert.notEqual(ack.response_nonce ?? '', '', t);
      assert.equal(ack.error_detail, undefined, t);
    }
  });

  test('a bad update is NACKed with error_detail and the last good config stays', async () => {
    const bad = routeConfig('outbound-routes', [{ name: 'svc', domains: ['catalog.default'], routes: [{ match: { prefix: '/' }, route: { cluster: 'catalog', cluster_header: 'x-cluster' } }] }]);
    ads.set(ROUTE_CONFIGURATION, [bad], 'r2');
    const nack = await waitFor('NACK', () => lastOf(ROUTE_CONFIGURATION, (r) => r.error_detail !== undefined));
    assert.equal(nack.version_info, 'r1', 'NACK carries the last accepted version');
    assert.match(nack.error_detail!.message!, /cluster_header: not supported/);
    assert.equal(nack.error_detail!.code, 3);
    const r = await call(proxy.listenerPort('outbound')!, '/items', { headers: { host: 'catalog.default' } });
    assert.equal(r.json<{ name: string }>().name, 'catalog');
    const dump = await (await fetch(`${proxy.adminUrl}/config_dump`)).json() as { configs: { '@type': string; dynamic_route_configs?: { version_info: string }[] }[] };
    const rd = dump.configs.find((c) => c['@type'].endsWith('RoutesConfigDump'))!;
    assert.equal(rd.dynamic_route_configs![0]!.version_info, 'r1');
  });

  test('a good update after a NACK is applied and ACKed', async () => {
    ads.set(ROUTE_CONFIGURATION, [routes('v3')], 'r3');
    await waitFor('ACK r3', () => lastOf(ROUTE_CONFIGURATION, (r) => r.version_info === 'r3' && r.error_detail === undefined));
    const r = await call(proxy.listenerPort('outbound')!, '/', { headers: { host: 'catalog.default' } });
    assert.equal(r.text, 'v3');
  });

  test('new clusters are followed by EDS subscriptions for them', async () => {
    ads.set(CLUSTER_LOAD_ASSIGNMENT, [cla('catalog', [up.port]), cla('reviews', [up.port])], 'e2');
    ads.set(CLUSTER, [edsCluster('catalog'), edsCluster('reviews')], 'c2');
    await waitFor('EDS names include reviews', () => lastOf(CLUSTER_LOAD_ASSIGNMENT, (r) => (r.resource_names ?? []).includes('reviews')));
    await waitFor('reviews endpoints applied', () => proxy.snapshot().clusters.get('reviews')?.usable.length === 1);
  });

  test('reconnects after the stream drops and resends subscriptions with known versions', async () => {
    const before = ads.requests.length;
    ads.dropStreams();
    await waitFor('new stream with node', () => ads.requests.slice(before).some((r) => r.node !== undefined));
    const again = await waitFor('RDS resubscribed', () => ads.requests.slice(before).find((r) => r.type_url === ROUTE_CONFIGURATION));
    assert.equal(again.version_info, 'r3');
    assert.deepEqual(again.resource_names, ['outbound-routes']);
    assert.equal(await ready(), true);
    const r = await call(proxy.listenerPort('outbound')!, '/', { headers: { host: 'catalog.default' } });
    assert.equal(r.text, 'v3');
  });

  test('/status and the weft_proxy_xds_* gauges: connected, then serving the last good config with no control plane', async () => {
    const cp = await startFakeAds();
    cp.set(CLUSTER, [edsCluster('catalog')], 'c1');
    cp.set(CLUSTER_LOAD_ASSIGNMENT, [cla('catalog', [up.port])], 'e1');
    cp.set(LISTENER, [listener('outbound', { rds: { route_config_name: 'outbound-routes', config_source: { ads: {} } } })], 'l1');
    cp.set(ROUTE_CONFIGURATION, [routes('static-ok')], 'r1');
    const p = await startProxy({ adminAddr: '127.0.0.1:0', logLevel: 'silent', xdsAddresses: [cp.address], xdsBackoff: createBackoff(20, 200) });
    type Status = { xds: { connected: boolean; address: string; since: string | null; lastUpdate: string | null; versions: Record<string, string> } | null; identity: unknown; servingLastGoodConfig: boolean };
    const status = async (): Promise<Status> => (await (await fetch(`${p.adminUrl}/status`)).json()) as Status;
    const metrics = async (): Promise<string> => (await fetch(`${p.adminUrl}/metrics`)).text();
    try {
      await waitFor('/ready', async () => (await fetch(`${p.adminUrl}/ready`)).status === 200, 15_000);
      const on = await status();
      assert.equal(on.xds?.connected, true);
      assert.equal(on.xds?.address, cp.address);
      assert.deepEqual(on.xds?.versions, { CDS: 'c1', EDS: 'e1', LDS: 'l1', RDS: 'r1' });
      assert.ok(on.xds?.lastUpdate !== null && Date.now() - Date.parse(on.xds!.lastUpdate!) < 15_000);
      assert.equal(on.identity, null);
      assert.equal(on.servingLastGoodConfig, false);
      let m = await metrics();
      assert.match(m, /^weft_proxy_xds_connected 1$/m);
      assert.match(m, /^weft_proxy_xds_last_update_timestamp_seconds \d+(\.\d+)?$/m);
      assert.doesNotMatch(m, /weft_proxy_certificate_expiry_timestamp_seconds \d/);

      await cp.close();
      await waitFor('/status connected: false', async () => (await status()).xds?.connected === false, 10_000);
      const off = await status();
      assert.equal(off.servingLastGoodConfig, true);
      assert.equal(off.xds?.lastUpdate, on.xds?.lastUpdate);
      assert.ok(off.xds?.since !== null && Date.parse(off.xds!.since!) >= Date.parse(on.xds!.since!));
      m = await metrics();
      assert.match(m, /^weft_proxy_xds_connected 0$/m);
      const r = await call(p.listenerPort('outbound')!, '/', { headers: { host: 'catalog.default' } });
      assert.equal(r.text, 'static-ok');
    } finally {
      await p.close();
      await cp.close();
    }
  });

  test('removing a listener from LDS closes it', async () => {
    const port = proxy.listenerPort('outbound')!;
    ads.set(LISTENER, [], 'l2');
    await waitFor('listener gone', () => proxy.listenerPort('outbound') === undefined);
    await assert.rejects(call(port, '/', { headers: { host: 'catalog.default' } }));
  });
});
