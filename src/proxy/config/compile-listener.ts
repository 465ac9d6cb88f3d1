/** Listener (+ HttpConnectionManager | TcpProxy, optionally behind ConnectionLimit) → CompiledListener. */
import { compileRouteConfig } from './compile-route.js';
import { compileAccessLogs } from '../observability/access-log.js';
import { compileTracing } from '../observability/tracing.js';
import { DEFAULT_FILTER_DEPS, findFilter } from '../filters/registry.js';
import { attachNetworkRbac, compileNetworkRbac, NETWORK_RBAC_TYPE, type NetworkRbacFilter } from '../filters/rbac/network.js';
import type { ChainEntry } from '../filters/types.js';
import { arr, bool, durationMs, enumStr, fail, num, obj, socketAddress, str, typedConfig } from './proto-values.js';
import type { CompiledFilterChain, CompiledListener, FilterChainMatch, HttpConnectionManagerConfig, ProtoJson, TcpProxyConfig } from './types.js';
import { compileDownstreamTls } from '../tls/compile-tls.js';

const HCM_TYPE = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const TCP_PROXY_TYPE = 'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const CONNECTION_LIMIT_TYPE = 'envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit';
const ROUTER_TYPE = 'envoy.extensions.filters.http.router.v3.Router';
/** HCM stream_idle_timeout when unset (Envoy's). */
export const STREAM_IDLE_TIMEOUT_DEFAULT_MS = 300_000;

function compileHcm(fields: ProtoJson, path: string): HttpConnectionManagerConfig {
  const codec = enumStr(fields.codec_type, `${path}.codec_type`, ['AUTO', 'HTTP1', 'HTTP2', 'HTTP3'], 'AUTO');
  if (codec === 'HTTP3') fail(`${path}.codec_type`, 'HTTP/3 listeners are not supported');
  const filters = arr(fields.http_filters, `${path}.http_filters`);
  const httpFilters: ChainEntry[] = [];
  filters.forEach((f, i) => {
    const fp = `${path}.http_filters[${i}]`;
    const o = obj(f, fp);
    const name = str(o.name, `${fp}.name`);
    const type = o.typed_config === undefined ? undefined : typedConfig(o.typed_config, `${fp}.typed_config`).type;
    const isRouter = type === ROUTER_TYPE || (type === undefined && name === 'envoy.filters.http.router');
    if (isRouter) {
      if (i !== filters.length - 1) fail(fp, 'the router filter must be the last HTTP filter');
      return;
    }
    const factory = findFilter(name, type);
    if (factory !== undefined) {
      if (bool(o.disabled, `${fp}.disabled`)) fail(`${fp}.disabled`, 'disabled filters are not supported yet');
      const fields = o.typed_config === undefined ? {} : typedConfig(o.typed_config, `${fp}.typed_config`).fields;
      httpFilters.push({ name, filter: factory.create(fields, `${fp}.typed_config`, DEFAULT_FILTER_DEPS) });
      return;
    }
    if (bool(o.is_optional, `${fp}.is_optional`)) return;
    fail(fp, `HTTP filter ${type ?? name} is not supported yet`);
  });
  if (filters.length === 0) fail(`${path}.http_filters`, 'needs the router filter');
  let routeConfig; let rdsName: string | undefined;
  if (fields.route_config !== undefined) {
    routeConfig = compileRouteConfig(fields.route_config, `${path}.route_config`);
  } else if (fields.rds !== undefined) {
    const rds = obj(fields.rds, `${path}.rds`);
    rdsName = str(rds.route_config_name, `${path}.rds.route_config_name`);
    const src = obj(rds.config_source, `${path}.rds.config_source`);
    if (src.ads === undefined && src.path === undefined && src.path_config_source === undefined) {
      // Any api_config_source other than ADS would be a second stream we do not open.
      if (src.api_config_source !== undefined) fail(`${path}.rds.config_source`, 'only ADS config sources are supported');
    }
  } else {
    fail(path, 'needs route_config or rds (scoped routes are not supported)');
  }
  const cho = obj(fields.common_http_protocol_options ?? {}, `${path}.common_http_protocol_options`);
  const maxKb = num(fields.max_request_headers_kb, `${path}.max_request_headers_kb`, 60);
  if (!Number.isInteger(maxKb) || maxKb < 1 || maxKb > 8192) fail(`${path}.max_request_headers_kb`, 'must be an integer in [1, 8192]');
  const maxHeadersCount = num(cho.max_headers_count, `${path}.common_http_protocol_options.max_headers_count`, 100);
  if (!Number.isInteger(maxHeadersCount) || maxHeadersCount < 1) fail(`${path}.common_http_protocol_options.max_headers_count`, 'must be an integer ≥ 1');
  // Weft passes WebSocket upgrades through when the HCM says nothing (the control plane
  // does not emit upgrade_configs yet); an explicit list is honoured as Envoy does.
  const upgradeTypes = new Set<string>(fields.upgrade_configs === undefined ? ['websocket'] : []);
  arr(fields.upgrade_configs, `${path}.upgrade_configs`).forEach((u, i) => {
    const up = `${path}.upgrade_configs[${i}]`;
    const o = obj(u, up);
    const type = str(o.upgrade_type, `${up}.upgrade_type`).toLowerCase();
    if (arr(o.filters, `${up}.filters`).length > 0) fail(`${up}.filters`, 'upgrade filter chains are not supported');
    if (type === 'connect') fail(`${up}.upgrade_type`, 'CONNECT is not supported');
    if (bool(o.enabled, `${up}.enabled`, true)) upgradeTypes.add(type);
  });
  return Object.freeze({
    statPrefix: fields.stat_prefix === undefined ? '' : str(fields.stat_prefix, `${path}.stat_prefix`),
    codec: codec as 'AUTO' | 'HTTP1' | 'HTTP2',
    routeConfig,
    rdsName,
    stripAnyHostPort: bool(fields.strip_any_host_port, `${path}.strip_any_host_port`),
    stripMatchingHostPort: bool(fields.strip_matching_host_port, `${path}.strip_matching_host_port`),
    requestTimeoutMs: durationMs(fields.request_timeout, `${path}.request_timeout`, 0),
    requestHeadersTimeoutMs: durationMs(fields.request_headers_timeout, `${path}.request_headers_timeout`, 0),
    idleTimeoutMs: durationMs(cho.idle_timeout, `${path}.common_http_protocol_options.idle_timeout`, 3_600_000),
    // Envoy's default: 5 minutes without bytes either way ends a stream (408, flag SI).
    streamIdleTimeoutMs: durationMs(fields.stream_idle_timeout, `${path}.stream_idle_timeout`, STREAM_IDLE_TIMEOUT_DEFAULT_MS),
    maxRequestHeadersBytes: maxKb * 1024,
    maxHeadersCount,
    upgradeTypes,
    httpFilters,
    accessLogs: fields.access_log === undefined ? [] : compileAccessLogs(fields.access_log, `${path}.access_log`),
    tracing: fields.tracing === undefined ? undefined : compileTracing(fields.tracing, `${path}.tracing`),
  });
}

function compileTcpProxy(fields: ProtoJson, path: string): TcpProxyConfig {
  for (const k of ['tunneling_config', 'on_demand', 'metadata_match', 'hash_policy']) {
    if (fields[k] !== undefined) fail(`${path}.${k}`, 'not supported');
  }
  let cluster: string | undefined; let weighted: TcpProxyConfig['weighted'];
  if (fields.cluster !== undefined && fields.cluster !== '') {
    cluster = str(fields.cluster, `${path}.cluster`);
  } else if (fields.weighted_clusters !== undefined) {
    const wp = `${path}.weighted_clusters`;
    const clusters = arr(obj(fields.weighted_clusters, wp).clusters, `${wp}.clusters`).map((c, i) => {
      const o = obj(c, `${wp}.clusters[${i}]`);
      const weight = num(o.weight, `${wp}.clusters[${i}].weight`, 0);
      if (!Number.isInteger(weight) || weight < 0) fail(`${wp}.clusters[${i}].weight`, 'must be a non-negative integer');
      if (o.metadata_match !== undefined) fail(`${wp}.clusters[${i}].metadata_match`, 'not supported');
      return Object.freeze({ name: str(o.name, `${wp}.clusters[${i}].name`), weight });
    }).filter((c) => c.weight > 0);
    const total = clusters.reduce((a, c) => a + c.weight, 0);
    if (total === 0) fail(`${wp}.clusters`, 'needs a cluster with a positive weight');
    weighted = Object.freeze({ clusters, total });
  } else {
    fail(path, 'needs cluster or weighted_clusters');
  }
  return Object.freeze({
    statPrefix: fields.stat_prefix === undefined ? '' : str(fields.stat_prefix, `${path}.stat_prefix`),
    cluster,
    weighted,
    idleTimeoutMs: durationMs(fields.idle_timeout, `${path}.idle_timeout`, 3_600_000),
  });
}

const TLS_INSPECTOR = 'envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector';
const HTTP_INSPECTOR = 'envoy.extensions.filters.listener.http_inspector.v3.HttpInspector';
const LISTENER_FILTER_NAMES: Readonly<Record<string, string>> = {
  'envoy.filters.listener.tls_inspector': TLS_INSPECTOR,
  'envoy.filters.listener.http_inspector': HTTP_INSPECTOR,
};
const MATCH_FIELDS = new Set(['destination_port', 'server_names', 'transport_protocol', 'application_protocols']);

function compileMatch(v: unknown, path: string): FilterChainMatch {
  const m = obj(v ?? {}, path);
  for (const [k, val] of Object.entries(m)) {
    if (val === undefined || val === null || (Array.isArray(val) && val.length === 0) || MATCH_FIELDS.has(k)) continue;
    fail(`${path}.${k}`, 'not supported (destination_port, server_names, transport_protocol and application_protocols are)');
  }
  const tp = m.transport_protocol === undefined || m.transport_protocol === '' ? undefined : str(m.transport_protocol, `${path}.transport_protocol`);
  if (tp !== undefined && tp !== 'tls' && tp !== 'raw_buffer') fail(`${path}.transport_protocol`, 'must be "tls" or "raw_buffer"');
  const port = m.destination_port === undefined ? undefined : num(m.destination_port, `${path}.destination_port`, 0);
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) fail(`${path}.destination_port`, 'must be a port (1-65535)');
  return Object.freeze({
    destinationPort: port,
    serverNames: Object.freeze(arr(m.server_names, `${path}.server_names`).map((n, i) => str(n, `${path}.server_names[${i}]`).toLowerCase())),
    transportProtocol: tp as 'tls' | 'raw_buffer' | undefined,
    applicationProtocols: Object.freeze(arr(m.application_protocols, `${path}.application_protocols`).map((n, i) => str(n, `${path}.application_protocols[${i}]`))),
  });
}

function compileChain(v: unknown, chainPath: string, fallbackName: string, isDefault: boolean): CompiledFilterChain {
  const chain = obj(v, chainPath);
  const name = chain.name === undefined || chain.name === '' ? fallbackName : str(chain.name, `${chainPath}.name`);
  const match = isDefault ? compileMatch({}, chainPath) : compileMatch(chain.filter_chain_match, `${chainPath}.filter_chain_match`);
  if (isDefault && chain.filter_chain_match !== undefined && Object.keys(obj(chain.filter_chain_match, `${chainPath}.filter_chain_match`)).length > 0) {
    fail(`${chainPath}.filter_chain_match`, 'the default filter chain takes no match');
  }
  const tls = chain.transport_socket === undefined ? undefined : compileDownstreamTls(chain.transport_socket, `${chainPath}.transport_socket`);
  const filters = arr(chain.filters, `${chainPath}.filters`);
  let maxConnections: number | undefined;
  let hcm: HttpConnectionManagerConfig | undefined;
  let tcp: TcpProxyConfig | undefined;
  const networkRbac: NetworkRbacFilter[] = [];
  filters.forEach((f, i) => {
    const fp = `${chainPath}.filters[${i}]`;
    const { type, fields } = typedConfig(obj(f, fp).typed_config, `${fp}.typed_config`);
    const last = i === filters.length - 1;
    if (type === CONNECTION_LIMIT_TYPE && !last && i === 0) {
      const mp = `${fp}.typed_config.max_connections`;
      maxConnections = num(fields.max_connections, mp, 0);
      if (!Number.isInteger(maxConnections) || maxConnections < 1) fail(mp, 'must be an integer ≥ 1');
      if (durationMs(fields.delay, `${fp}.typed_config.delay`, 0) > 0) fail(`${fp}.typed_config.delay`, 'a delay before closing is not supported');
      if (fields.runtime_enabled !== undefined) fail(`${fp}.typed_config.runtime_enabled`, 'runtime flags are not supported');
    } else if (type === HCM_TYPE && last) {
      hcm = compileHcm(fields, `${fp}.typed_config`);
    } else if (type === TCP_PROXY_TYPE && last) {
      tcp = compileTcpProxy(fields, `${fp}.typed_config`);
    } else if (type === NETWORK_RBAC_TYPE && !last) {
      networkRbac.push(compileNetworkRbac(String(obj(f, fp).name ?? type), fields, `${fp}.typed_config`));
    } else {
      fail(`${fp}.typed_config`, `network filter ${type} is not supported here (supported: an optional ConnectionLimit, then ${HCM_TYPE} or ${TCP_PROXY_TYPE} last)`);
    }
  });
  if (hcm === undefined && tcp === undefined) fail(`${chainPath}.filters`, 'needs a terminal network filter (HTTP connection manager or TCP proxy)');
  if (networkRbac.length > 0 && tcp === undefined) fail(`${chainPath}.filters`, 'network RBAC is supported in front of tcp_proxy only (use the HTTP RBAC filter in the HCM)');
  if (tcp !== undefined) attachNetworkRbac(tcp, networkRbac);
  return Object.freeze({ name, match, isDefault, tls, hcm, tcp, maxConnections });
}

/** Returns undefined for listeners a sidecar does not bind (api_listener, for proxyless gRPC). */
export function compileListener(v: unknown, path = ''): CompiledListener | undefined {
  const l = obj(v, path || 'listener');
  const at = (s: string): string => (path === '' ? s : `${path}.${s}`);
  const name = str(l.name, at('name'));
  if (l.api_listener !== undefined) return undefined;
  if (l.address === undefined) fail(at('address'), 'is required');
  const { host, port } = socketAddress(l.address, at('address'));
  // tls_inspector / http_inspector are what Weft's peek does; they need no config.
  arr(l.listener_filters, at('listener_filters')).forEach((f, i) => {
    const fp = at(`listener_filters[${i}]`);
    const o = obj(f, fp);
    const type = o.typed_config === undefined ? LISTENER_FILTER_NAMES[str(o.name, `${fp}.name`)] : typedConfig(o.typed_config, `${fp}.typed_config`).type;
    if (type !== TLS_INSPECTOR && type !== HTTP_INSPECTOR) fail(fp, `listener filter ${type ?? String(o.name)} is not supported (tls_inspector and http_inspector are)`);
  });
  const raw = arr(l.filter_chains, at('filter_chains'));
  const chains = raw.map((c, i) => compileChain(c, at(`filter_chains[${i}]`), `filter_chains[${i}]`, false));
  if (l.default_filter_chain !== undefined) chains.push(compileChain(l.default_filter_chain, at('default_filter_chain'), 'default_filter_chain', true));
  if (chains.length === 0) fail(at('filter_chains'), 'needs at least one filter chain');
  const names = new Set<string>();
  for (const c of chains) {
    if (names.has(c.name)) fail(at('filter_chains'), `two filter chains are named ${JSON.stringify(c.name)}`);
    names.add(c.name);
  }
  const seen = new Set<string>();
  for (const c of chains) {
    if (c.isDefault) continue;
    const key = JSON.stringify(c.match);
    if (seen.has(key)) fail(at('filter_chains'), `two filter chains have the same filter_chain_match (${key}); Envoy refuses that too`);
    seen.add(key);
  }
  const inspect = chains.some((c) => c.match.transportProtocol !== undefined || c.match.serverNames.length > 0 || c.match.applicationProtocols.length > 0);
  const first = chains[0]!;
  const direction = l.traffic_direction === undefined ? undefined : enumStr(l.traffic_direction, at('traffic_direction'), ['UNSPECIFIED', 'INBOUND', 'OUTBOUND'], 'UNSPECIFIED');
  return Object.freeze({ name, host, port, hcm: first.hcm, tcp: first.tcp, maxConnections: first.maxConnections, chains: Object.freeze(chains), inspect, direction });
}
