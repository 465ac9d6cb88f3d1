/** ClusterLoadAssignment → EndpointAssignment. */
import { isIP } from 'node:net';
import { arr, enumStr, fail, num, obj, socketAddress, str } from './proto-values.js';
import type { EndpointAssignment, EndpointSpec, HealthStatus } from './types.js';

const HEALTH: readonly HealthStatus[] = ['UNKNOWN', 'HEALTHY', 'UNHEALTHY', 'DRAINING', 'TIMEOUT', 'DEGRADED'];

/**
 * Envoy flattens localities unless locality-weighted balancing is configured; the
 * locality weight is still validated here and kept apart (`localityWeight`, for
 * `common_lb_config.locality_weighted_lb_config`: host-set-lb.ts). In the host
 * weight it only gates the hosts (weight 0 sends them no traffic, which is what a
 * control plane means by it): multiplying it in would over-weight hosts in bigger
 * localities, since control planes set a locality's weight to the sum of its
 * hosts' weights.
 */
/** RFC 1123 host name (what a DNS cluster's endpoint may name instead of an IP). */
const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;

/** `dnsNames`: a STRICT_DNS / LOGICAL_DNS cluster's assignment, whose endpoints may be host names. */
export function compileLoadAssignment(v: unknown, path = '', clusterNameOverride?: string, dnsNames = false): EndpointAssignment {
  const cla = obj(v, path || 'cluster_load_assignment');
  const at = (s: string): string => (path === '' ? s : `${path}.${s}`);
  const clusterName = clusterNameOverride ?? str(cla.cluster_name, at('cluster_name'));
  if (cla.named_endpoints !== undefined && Object.keys(obj(cla.named_endpoints, at('named_endpoints'))).length > 0) fail(at('named_endpoints'), 'not supported');
  const endpoints: EndpointSpec[] = [];
  arr(cla.endpoints, at('endpoints')).forEach((x, i) => {
    const lp = at(`endpoints[${i}]`);
    const loc = obj(x, lp);
    const lwSet = loc.load_balancing_weight !== undefined;
    const lw = lwSet ? num(loc.load_balancing_weight, `${lp}.load_balancing_weight`, 1) : 1;
    if (!Number.isInteger(lw) || lw < 0) fail(`${lp}.load_balancing_weight`, 'must be an integer ≥ 0');
    const priority = num(loc.priority, `${lp}.priority`, 0);
    const l = obj(loc.locality ?? {}, `${lp}.locality`);
    const locality = [l.region, l.zone, l.sub_zone].map((s) => (typeof s === 'string' ? s : '')).join('/');
    arr(loc.lb_endpoints, `${lp}.lb_endpoints`).forEach((y, j) => {
      const ep = `${lp}.lb_endpoints[${j}]`;
      const lbe = obj(y, ep);
      if (lbe.endpoint_name !== undefined) fail(`${ep}.endpoint_name`, 'named endpoints are not supported');
      const e = obj(lbe.endpoint, `${ep}.endpoint`);
      const { host, port } = socketAddress(e.address, `${ep}.endpoint.address`);
      if (isIP(host) === 0 && !(dnsNames && HOSTNAME.test(host))) fail(`${ep}.endpoint.address.socket_address.address`, `"${host}" is not an IP literal${dnsNames ? ' or a host name' : ''}`);
      if (port === 0) fail(`${ep}.endpoint.address.socket_address.port_value`, 'must not be 0');
      const w = num(lbe.load_balancing_weight, `${ep}.load_balancing_weight`, 1);
      if (!Number.isInteger(w) || w < 1) fail(`${ep}.load_balancing_weight`, 'must be an integer ≥ 1');
      endpoints.push(Object.freeze({
        address: host,
        port,
        health: enumStr(lbe.health_status, `${ep}.health_status`, HEALTH, 'UNKNOWN'),
        weight: lw === 0 ? 0 : w,
        priority,
        locality,
        localityWeight: lwSet ? lw : undefined,
      }));
    });
  });
  return Object.freeze({ clusterName, endpoints: Object.freeze(endpoints) });
}
