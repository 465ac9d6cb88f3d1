/** Listener (+ HttpConnectionManager) → CompiledListener. */
import { compileRouteConfig } from './compile-route.js';
import { arr, bool, durationMs, enumStr, fail, obj, socketAddress, str, typedConfig } from './proto-values.js';
import type { CompiledListener, HttpConnectionManagerConfig, ProtoJson } from './types.js';

const HCM_TYPE = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER_TYPE = 'envoy.extensions.filters.http.router.v3.Router';

function compileHcm(fields: ProtoJson, path: string): HttpConnectionManagerConfig {
  const codec = enumStr(fields.codec_type, `${path}.codec_type`, ['AUTO', 'HTTP1', 'HTTP2', 'HTTP3'], 'AUTO');
  if (codec === 'HTTP2' || codec === 'HTTP3') fail(`${path}.codec_type`, `${codec} listeners are not supported yet (HTTP/1.1 only)`);
  const filters = arr(fields.http_filters, `${path}.http_filters`);
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
  return Object.freeze({
    statPrefix: fields.stat_prefix === undefined ? '' : str(fields.stat_prefix, `${path}.stat_prefix`),
    routeConfig,
    rdsName,
    stripAnyHostPort: bool(fields.strip_any_host_port, `${path}.strip_any_host_port`),
    stripMatchingHostPort: bool(fields.strip_matching_host_port, `${path}.strip_matching_host_port`),
    requestTimeoutMs: durationMs(fields.request_timeout, `${path}.request_timeout`, 0),
    requestHeadersTimeoutMs: durationMs(fields.request_headers_timeout, `${path}.request_headers_timeout`, 0),
    idleTimeoutMs: durationMs(cho.idle_timeout, `${path}.common_http_protocol_options.idle_timeout`, 3_600_000),
  });
}

/** Returns undefined for listeners a sidecar does not bind (api_listener, for proxyless gRPC). */
export function compileListener(v: unknown, path = ''): CompiledListener | undefined {
  const l = obj(v, path || 'listener');
  const at = (s: string): string => (path === '' ? s : `${path}.${s}`);
  const name = str(l.name, at('name'));
  if (l.api_listener !== undefined) return undefined;
  if (l.address === undefined) fail(at('address'), 'is required');
  const { host, port } = socketAddress(l.address, at('address'));
  if (arr(l.listener_filters, at('listener_filters')).length > 0) fail(at('listener_filters'), 'not supported yet');
  const chains = arr(l.filter_chains, at('filter_chains'));
  const all = l.default_filter_chain === undefined ? chains : [...chains, l.default_filter_chain];
  if (all.length !== 1) fail(at('filter_chains'), 'exactly one filter chain is supported for now');
  const chainPath = chains.length === 1 ? at('filter_chains[0]') : at('default_filter_chain');
  const chain = obj(all[0], chainPath);
  if (chain.transport_socket !== undefined) fail(`${chainPath}.transport_socket`, 'TLS listeners are not supported yet');
  const match = obj(chain.filter_chain_match ?? {}, `${chainPath}.filter_chain_match`);
  if (Object.keys(match).length > 0) fail(`${chainPath}.filter_chain_match`, 'filter chain matching is not supported yet');
  const filters = arr(chain.filters, `${chainPath}.filters`);
  if (filters.length !== 1) fail(`${chainPath}.filters`, 'exactly one network filter (the HTTP connection manager) is supported');
  const fp = `${chainPath}.filters[0]`;
  const f = obj(filters[0], fp);
  const { type, fields } = typedConfig(f.typed_config, `${fp}.typed_config`);
  if (type !== HCM_TYPE) fail(`${fp}.typed_config`, `network filter ${type} is not supported (only ${HCM_TYPE})`);
  return Object.freeze({ name, host, port, hcm: compileHcm(fields, `${fp}.typed_config`) });
}
