import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MethodDefinition } from '@grpc/grpc-js';
import { envoyPackageDefinition } from './protos.js';
import { parseInChild, proxyAdsClientConstructor, proxyProtoRoot } from './proxy-protos.js';
import { loadProxyRoot, PROXY_PROTO_FILES } from './proxy-proto-parse.js';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION, SECRET } from './type-urls.js';
import protobuf from 'protobufjs';

type Codec = { serialize(v: object): Buffer; deserialize(b: Buffer): Record<string, unknown> };
const def = envoyPackageDefinition();
const controlResponse = def['envoy.service.discovery.v3.DiscoveryResponse'] as unknown as Codec;
const controlRequest = def['envoy.service.discovery.v3.DiscoveryRequest'] as unknown as Codec;
const method = proxyAdsClientConstructor().service.StreamAggregatedResources as MethodDefinition<object, Record<string, unknown>>;

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

/** Every xDS resource of the control plane's golden translations, by type URL. */
function goldenResources(): Map<string, object[]> {
  const types = new Set<string>([LISTENER, ROUTE_CONFIGURATION, CLUSTER, CLUSTER_LOAD_ASSIGNMENT, SECRET]);
  const out = new Map<string, object[]>();
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) { v.forEach(walk); return; }
    if (v === null || typeof v !== 'object') return;
    const t = (v as Record<string, unknown>)['@type'];
    if (typeof t === 'string' && types.has(t)) {
      out.set(t, [...(out.get(t) ?? []), v]);
      return;
    }
    Object.values(v).forEach(walk);
  };
  const dir = join(repoRoot(), 'src/control/xds/testdata');
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.golden.json'))) walk(JSON.parse(readFileSync(join(dir, f), 'utf8')));
  return out;
}

/** proto-loader's `oneofs: true` markers: a oneof group name whose value names a set sibling. */
function withoutMarkers(v: unknown, groups: ReadonlySet<string>): unknown {
  if (Array.isArray(v)) return v.map((x) => withoutMarkers(x, groups));
  if (v === null || typeof v !== 'object' || Buffer.isBuffer(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (typeof x === 'string' && groups.has(k) && x in v) continue;
    out[k] = withoutMarkers(x, groups);
  }
  return out;
}

function oneofGroups(): Set<string> {
  const names = new Set<string>();
  const walk = (ns: protobuf.NamespaceBase): void => {
    for (const o of ns.nestedArray) {
      if (o instanceof protobuf.Type) for (const g of o.oneofsArray) names.add(g.name);
      if (o instanceof protobuf.Namespace || o instanceof protobuf.Type) walk(o);
    }
  };
  walk(proxyProtoRoot());
  return names;
}

/** What the golden files do not cover: a Secret, a tracer, a file access log, LB policies, health checks. */
const EXTRA: Record<string, object[]> = {
  [SECRET]: [{ '@type': SECRET, name: 'default', tls_certificate: { certificate_chain: { inline_string: 'PEM' }, private_key: { inline_bytes: Buffer.from('key') } } }],
  [LISTENER]: [{
    '@type': LISTENER, name: 'extra', address: { socket_address: { address: '0.0.0.0', port_value: 1 } },
    filter_chains: [{ filters: [{ name: 'hcm', typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
      stat_prefix: 'x', rds: { route_config_name: 'r', config_source: { ads: {} } },
      tracing: { random_sampling: { value: 12.5 }, provider: { name: 'otel', typed_config: { '@type': 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig', service_name: 's', http_service: { http_uri: { uri: 'http://c/v1/traces', cluster: 'c', timeout: { seconds: 5 } } } } } },
      access_log: [{ name: 'file', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog', path: '/dev/stdout', log_format: { json_format: { a: '%START_TIME%', n: 1 } } } }],
      http_filters: [{ name: 'router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
    } }] }],
  }],
  [CLUSTER]: [{
    '@type': CLUSTER, name: 'extra', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } },
    connect_timeout: { seconds: '9007199254740993', nanos: 5 },
    load_balancing_policy: { policies: [{ typed_extension_config: { name: 'rh', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash', minimum_ring_size: { value: '1024' } } } }] },
    health_checks: [{ timeout: { seconds: 1 }, interval: { seconds: 2 }, http_health_check: { path: '/healthz' } }],
    outlier_detection: { consecutive_5xx: { value: 3 } },
  }],
};

test('the proxy decodes every golden resource as proto-loader did, minus oneof markers', () => {
  const groups = oneofGroups();
  const all = goldenResources();
  for (const [t, rs] of Object.entries(EXTRA)) all.set(t, [...(all.get(t) ?? []), ...rs]);
  let checked = 0;
  for (const [type, resources] of all) {
    const wire = controlResponse.serialize({ version_info: '1', type_url: type, nonce: 'n', resources });
    const mine = method.responseDeserialize(wire);
    assert.deepEqual(mine, withoutMarkers(controlResponse.deserialize(wire), groups), type);
    assert.equal(JSON.stringify(mine.resources).includes('"type_url"'), false, `${type}: every Any is unpacked`);
    checked += resources.length;
  }
  assert.ok(checked > 50, `checked ${checked} resources`);
});

test('int64 fields decode as strings, Anys as { @type, ...fields }, no marker fields', () => {
  const wire = controlResponse.serialize({ type_url: CLUSTER, resources: EXTRA[CLUSTER] });
  const [c] = method.responseDeserialize(wire).resources as Record<string, unknown>[];
  assert.deepEqual(c!.connect_timeout, { seconds: '9007199254740993', nanos: 5 });
  assert.equal(c!['@type'], CLUSTER);
  assert.equal('cluster_discovery_type' in c!, false, 'no oneof marker');
  assert.equal(c!.type, 'EDS');
});

test('DiscoveryRequests the proxy encodes read back the same on the control plane', () => {
  const req = {
    version_info: '3', resource_names: ['a', 'b'], type_url: CLUSTER_LOAD_ASSIGNMENT, response_nonce: '7',
    node: { id: 'n', cluster: 'c', locality: { zone: 'z' }, user_agent_name: 'weft-proxy', client_features: ['f'],
      metadata: { fields: { k: { stringValue: 'v' }, n: { numberValue: 2 }, l: { listValue: { values: [{ boolValue: true }] } } } } },
    error_detail: { code: 3, message: 'bad' },
  };
  const back = controlRequest.deserialize(method.requestSerialize(req));
  assert.deepEqual(withoutMarkers(back, oneofGroups()), req);
});

test('the pruned root keeps only what a proxy decodes', () => {
  const root = proxyProtoRoot();
  assert.ok(root.lookup('envoy.extensions.filters.http.rbac.v3.RBAC'));
  assert.equal(root.lookup('envoy.admin.v3.ConfigDump'), null, 'admin protos are not loaded');
  assert.equal(root.lookup('validate.FieldRules'), null, 'validation rules are pruned');
  assert.equal(root.lookup('envoy.service.discovery.v3.AggregatedDiscoveryService'), null, 'no service reflection');
});

test('the root parsed in the child process is the one parsed in-process (the fallback)', () => {
  const child = parseInChild();
  assert.ok(child !== undefined, 'the child process ran');
  assert.equal(JSON.stringify(child.toJSON()), JSON.stringify(loadProxyRoot(PROXY_PROTO_FILES).toJSON()));
});
