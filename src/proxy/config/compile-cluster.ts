/** Cluster → ClusterConfig. */
import { compileLoadAssignment } from './compile-endpoints.js';
import { arr, durationMs, enumStr, fail, num, obj, optObj, str } from './proto-values.js';
import { compileHealthCheck, compileOutlier } from './compile-health.js';
import type { ClusterConfig, LbPolicy } from './types.js';
import { compileUpstreamTls } from '../tls/compile-tls.js';

const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const LB_POLICIES: readonly LbPolicy[] = ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV'];
const COMMON_LB_FIELDS: ReadonlySet<string> = new Set(['healthy_panic_threshold', 'locality_weighted_lb_config']);

export function compileCluster(v: unknown, path = ''): ClusterConfig {
  const c = obj(v, path || 'cluster');
  const at = (s: string): string => (path === '' ? s : `${path}.${s}`);
  const name = str(c.name, at('name'));
  if (name === '') fail(at('name'), 'must not be empty');
  if (c.cluster_type !== undefined) fail(at('cluster_type'), 'custom cluster types are not supported');
  const kind = enumStr(c.type, at('type'), ['STATIC', 'STRICT_DNS', 'LOGICAL_DNS', 'EDS', 'ORIGINAL_DST'], 'STATIC');
  if (kind === 'ORIGINAL_DST') fail(at('type'), 'ORIGINAL_DST clusters are not supported yet (STATIC, EDS, STRICT_DNS and LOGICAL_DNS are)');
  // DNS clusters (the control plane's JWKS clusters, users' external services): the
  // endpoint's host name is resolved by the OS resolver at each new connection, i.e.
  // LOGICAL_DNS semantics for both kinds — STRICT_DNS's one host per resolved address
  // is not kept (docs/proxy.md).
  const dns = kind === 'STRICT_DNS' || kind === 'LOGICAL_DNS';
  let edsName = name;
  if (kind === 'EDS') {
    const eds = optObj(c.eds_cluster_config, at('eds_cluster_config'));
    if (eds?.service_name !== undefined && eds.service_name !== '') edsName = str(eds.service_name, at('eds_cluster_config.service_name'));
    const src = optObj(eds?.eds_config, at('eds_cluster_config.eds_config'));
    if (src?.api_config_source !== undefined) fail(at('eds_cluster_config.eds_config'), 'only ADS config sources are supported');
  }
  if (c.load_balancing_policy !== undefined) fail(at('load_balancing_policy'), 'typed load balancing policies are not supported; use lb_policy');
  const lbPolicy = enumStr(c.lb_policy, at('lb_policy'), ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV', 'CLUSTER_PROVIDED', 'LOAD_BALANCING_POLICY_CONFIG'] as const, 'ROUND_ROBIN');
  if (!(LB_POLICIES as readonly string[]).includes(lbPolicy)) fail(at('lb_policy'), `${lbPolicy} is not supported`);
  if (c.transport_socket_matches !== undefined && arr(c.transport_socket_matches, at('transport_socket_matches')).length > 0) fail(at('transport_socket_matches'), 'not supported (use transport_socket)');
  const tls = c.transport_socket === undefined ? undefined : compileUpstreamTls(c.transport_socket, at('transport_socket'));
  let protocol: 'http1' | 'http2' = c.http2_protocol_options !== undefined ? 'http2' : 'http1';
  const tepo = optObj(c.typed_extension_protocol_options, at('typed_extension_protocol_options'));
  for (const [k, val] of Object.entries(tepo ?? {})) {
    const kp = at(`typed_extension_protocol_options.${k}`);
    if (k !== HTTP_PROTOCOL_OPTIONS) continue; // other extensions' options do not concern us
    const opts = obj(val, kp);
    if (opts.use_downstream_protocol_config !== undefined || opts.auto_config !== undefined) {
      fail(kp, 'only explicit_http_config is supported (use_downstream_protocol_config and auto_config are not)');
    }
    const explicit = optObj(opts.explicit_http_config, `${kp}.explicit_http_config`);
    if (explicit?.http3_protocol_options !== undefined) fail(`${kp}.explicit_http_config.http3_protocol_options`, 'HTTP/3 upstreams are not supported');
    if (explicit?.http2_protocol_options !== undefined) protocol = 'http2';
    else if (explicit?.http_protocol_options !== undefined) protocol = 'http1';
  }
  const ring = obj(c.ring_hash_lb_config ?? {}, at('ring_hash_lb_config'));
  const minRingSize = num(ring.minimum_ring_size, at('ring_hash_lb_config.minimum_ring_size'), 1024);
  const maxRingSize = num(ring.maximum_ring_size, at('ring_hash_lb_config.maximum_ring_size'), 8 * 1024 * 1024);
  if (minRingSize < 1 || maxRingSize < minRingSize || maxRingSize > 8 * 1024 * 1024) fail(at('ring_hash_lb_config'), 'need 1 ≤ minimum_ring_size ≤ maximum_ring_size ≤ 8M');
  if (ring.hash_function !== undefined && ring.hash_function !== 'XX_HASH' && ring.hash_function !== 0) fail(at('ring_hash_lb_config.hash_function'), 'only XX_HASH (the default) is accepted');
  const maglev = obj(c.maglev_lb_config ?? {}, at('maglev_lb_config'));
  const maglevTableSize = num(maglev.table_size, at('maglev_lb_config.table_size'), 65537);
  if (!isPrime(maglevTableSize) || maglevTableSize > 5_000_011) fail(at('maglev_lb_config.table_size'), 'must be a prime ≤ 5000011');
  const lr = obj(c.least_request_lb_config ?? {}, at('least_request_lb_config'));
  const leastRequestChoices = num(lr.choice_count, at('least_request_lb_config.choice_count'), 2);
  if (leastRequestChoices < 2) fail(at('least_request_lb_config.choice_count'), 'must be ≥ 2');
  let maxConnections = 1024; let maxRequests = 1024; let maxPendingRequests = 1024; let maxRetries = 3;
  let retryBudget: ClusterConfig['retryBudget'];
  const cb = optObj(c.circuit_breakers, at('circuit_breakers'));
  for (const [i, t] of arr(cb?.thresholds, at('circuit_breakers.thresholds')).entries()) {
    const tp = at(`circuit_breakers.thresholds[${i}]`);
    const th = obj(t, tp);
    if (th.priority !== undefined && th.priority !== 'DEFAULT' && th.priority !== 0) continue;
    maxConnections = num(th.max_connections, `${tp}.max_connections`, 1024);
    maxRequests = num(th.max_requests, `${tp}.max_requests`, 1024);
    maxPendingRequests = num(th.max_pending_requests, `${tp}.max_pending_requests`, 1024);
    maxRetries = num(th.max_retries, `${tp}.max_retries`, 3);
    const rb = optObj(th.retry_budget, `${tp}.retry_budget`);
    if (rb !== undefined) {
      const budgetPercent = num(rb.budget_percent, `${tp}.retry_budget.budget_percent`, 20);
      if (budgetPercent < 0 || budgetPercent > 100) fail(`${tp}.retry_budget.budget_percent`, 'must be in [0, 100]');
      retryBudget = { budgetPercent, minRetryConcurrency: num(rb.min_retry_concurrency, `${tp}.retry_budget.min_retry_concurrency`, 3) };
    }
    if (th.track_remaining !== undefined && th.track_remaining !== false) fail(`${tp}.track_remaining`, 'not supported');
  }
  const clb = optObj(c.common_lb_config, at('common_lb_config'));
  // Refuse what is not honoured rather than ignore it (zone_aware_lb_config,
  // consistent_hashing_lb_config, update_merge_window, override_host_status, ...).
  for (const [k, val] of Object.entries(clb ?? {})) {
    if (val === undefined || val === null) continue;
    // proto-loader's oneof marker (`oneofs: true`): names the field that is set, checked on its own.
    if (k === 'locality_config_specifier' && typeof val === 'string' && val in clb!) continue;
    if (!COMMON_LB_FIELDS.has(k)) fail(at(`common_lb_config.${k}`), 'not supported (healthy_panic_threshold and locality_weighted_lb_config are)');
  }
  let localityWeighted = false;
  if (clb?.locality_weighted_lb_config !== undefined && clb.locality_weighted_lb_config !== null) {
    obj(clb.locality_weighted_lb_config, at('common_lb_config.locality_weighted_lb_config'));
    localityWeighted = true;
  }
  const panic = optObj(clb?.healthy_panic_threshold, at('common_lb_config.healthy_panic_threshold'));
  const panicThresholdPercent = panic === undefined ? 50 : num(panic.value, at('common_lb_config.healthy_panic_threshold.value'), 0);
  if (panicThresholdPercent < 0 || panicThresholdPercent > 100) fail(at('common_lb_config.healthy_panic_threshold'), 'must be in [0, 100]');
  const loadAssignment = c.load_assignment === undefined ? undefined : compileLoadAssignment(c.load_assignment, at('load_assignment'), name, dns);
  if (kind !== 'EDS' && loadAssignment === undefined) fail(at('load_assignment'), `a ${kind} cluster needs load_assignment`);
  return Object.freeze({
    name,
    // A DNS cluster serves its fixed assignment like a STATIC one (names resolved per connection).
    kind: kind === 'EDS' ? 'EDS' : 'STATIC',
    edsName,
    lbPolicy: lbPolicy as LbPolicy,
    connectTimeoutMs: durationMs(c.connect_timeout, at('connect_timeout'), 5000),
    ringHash: { minRingSize, maxRingSize },
    maglevTableSize,
    leastRequestChoices,
    maxConnections,
    maxRequests,
    maxPendingRequests,
    maxRetries,
    retryBudget,
    outlier: c.outlier_detection === undefined ? undefined : compileOutlier(c.outlier_detection, at('outlier_detection')),
    healthChecks: arr(c.health_checks, at('health_checks')).map((h, i) => compileHealthCheck(h, at(`health_checks[${i}]`))),
    panicThresholdPercent,
    localityWeighted,
    protocol,
    loadAssignment: kind === 'EDS' ? undefined : loadAssignment,
    tls,
  });
}

function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  for (let i = 2; i * i <= n; i++) if (n % i === 0) return false;
  return true;
}
