import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServiceSpec } from '../../../api/service/service.js';
import type { WorkloadSpec } from '../../../api/workload/workload.js';
import type { BackendPolicySpec } from '../../../api/backendpolicy/backendpolicy.js';
import type { SecurityPolicySpec } from '../../../api/securitypolicy/securitypolicy.js';
import { LISTENER, ROUTE_CONFIGURATION } from '../../../xds/type-urls.js';
import { generateInbound } from '../inbound.js';
import { generateOutboundRouteConfig } from '../routes.js';
import type { MeshInput } from '../model.js';
import { RATE_LIMIT_FILTER } from './route-policy.js';
import { golden, assertValidEnvoy, fixture } from '../golden-fixtures.js';

/**
 * BackendPolicy parts enforced on the target's inbound listener
 * (inbound-policy.ts): rateLimit scope workload and timeouts.streamIdle.
 * Golden file: testdata/inbound-policy.golden.json (UPDATE_GOLDEN=1 rewrites it).
 */

// catalog: two HTTP ports, a per-workload limit on port 80 only and a stream idle
// timeout on the whole Service; search: a caller-scoped limit (stays on callers' routes).
const INPUT = `
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: catalog, namespace: default }
spec:
  selector: { app: catalog }
  ports:
    - { name: http, port: 80, targetPort: 8080, protocol: http }
    - { name: admin, port: 81, targetPort: 8081, protocol: http }
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: search, namespace: default }
spec:
  selector: { app: search }
  ports: [{ name: http, port: 80, targetPort: 8080, protocol: http }]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: { name: catalog-a, namespace: default }
spec: { labels: { app: catalog }, address: 10.0.0.1 }
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: { name: search-a, namespace: default }
spec: { labels: { app: search }, address: 10.0.0.2 }
---
apiVersion: weft.dev/v1alpha1
kind: BackendPolicy
metadata: { name: catalog-per-workload, namespace: default, creationTimestamp: "2024-01-01T00:00:00Z" }
spec:
  targetRefs: [{ kind: Service, name: catalog, port: 80 }]
  rateLimit: { scope: workload, requests: 5, per: 10s }
---
apiVersion: weft.dev/v1alpha1
kind: BackendPolicy
metadata: { name: catalog-timeouts, namespace: default, creationTimestamp: "2024-01-01T00:00:00Z" }
spec:
  targetRefs: [{ kind: Service, name: catalog }]
  timeouts: { streamIdle: 30s }
---
apiVersion: weft.dev/v1alpha1
kind: BackendPolicy
metadata: { name: search-per-caller, namespace: default, creationTimestamp: "2024-01-01T00:00:00Z" }
spec:
  targetRefs: [{ kind: Service, name: search }]
  rateLimit: { requests: 7, per: 1s }
`;

function load(extra = ''): MeshInput {
  const { by } = fixture('inbound-policy.yaml', INPUT + extra);
  return {
    services: by<ServiceSpec>('Service'),
    workloads: by<WorkloadSpec>('Workload'),
    httpRoutes: [],
    grpcRoutes: [],
    tcpRoutes: [],
    backendPolicies: by<BackendPolicySpec>('BackendPolicy'),
    securityPolicies: by<SecurityPolicySpec>('SecurityPolicy'),
  };
}

type Obj = Record<string, unknown>;
const hcmOf = (chain: Obj): Obj => ((chain.filters as Obj[]).at(-1)!.typed_config as Obj);
const filterNames = (chain: Obj): string[] => (hcmOf(chain).http_filters as Obj[]).map((f) => String(f.name));
const vhostsOf = (chain: Obj): Obj[] => ((hcmOf(chain).route_config as Obj).virtual_hosts as Obj[]);

test('inbound listener of catalog (PERMISSIVE): per-workload bucket on port 80, stream idle timeout on every port (golden, valid Envoy)', () => {
  const out = generateInbound(load(), { namespace: 'default', name: 'catalog' });
  assert.ok(out);
  assertValidEnvoy(LISTENER, out.listener);
  golden('inbound-policy', out.listener);
  const chains = out.listener.filter_chains as Obj[];
  assert.deepEqual(chains.map((c) => c.name), ['inbound|80|tls', 'inbound|81|tls', 'inbound|http|plaintext']);
  const [tls80, tls81, plain] = chains as [Obj, Obj, Obj];
  // Port 80's mTLS chain: bucketless HCM filter, the bucket on the route, the idle timeout on the HCM.
  assert.deepEqual(filterNames(tls80), [RATE_LIMIT_FILTER, 'envoy.filters.http.router']);
  assert.deepEqual(hcmOf(tls80).stream_idle_timeout, { seconds: 30 });
  const route80 = (vhostsOf(tls80)[0]!.routes as Obj[])[0]!;
  const bucket = (route80.typed_per_filter_config as Obj)[RATE_LIMIT_FILTER] as Obj;
  assert.deepEqual(bucket.token_bucket, { max_tokens: 5, tokens_per_fill: { value: 5 }, fill_interval: { seconds: 10 } });
  // Port 81 has no rate limit: its chain is as before, plus the idle timeout.
  assert.deepEqual(filterNames(tls81), ['envoy.filters.http.router']);
  assert.deepEqual(hcmOf(tls81).stream_idle_timeout, { seconds: 30 });
  // The plaintext HCM serves both ports: the timeout goes on each port's route.
  assert.deepEqual(filterNames(plain), [RATE_LIMIT_FILTER, 'envoy.filters.http.router']);
  assert.equal(hcmOf(plain).stream_idle_timeout, undefined);
  for (const vh of vhostsOf(plain)) {
    const r = (vh.routes as Obj[])[0]!;
    assert.deepEqual((r.route as Obj).idle_timeout, { seconds: 30 }, String(vh.name));
    assert.equal(((r.typed_per_filter_config as Obj | undefined) ?? {})[RATE_LIMIT_FILTER] !== undefined, vh.name === 'inbound|80', String(vh.name));
  }
});

test("callers' outbound routes keep caller-scoped limits and drop workload-scoped ones", () => {
  const rc = generateOutboundRouteConfig(load(), { namespace: 'default' }) as unknown as Obj;
  assertValidEnvoy(ROUTE_CONFIGURATION, rc);
  const limited = (host: string): boolean => {
    const vhs = (rc.virtual_hosts as Obj[]).filter((v) => (v.domains as string[]).includes(host));
    assert.ok(vhs.length > 0, host);
    return vhs.some((v) => (v.routes as Obj[]).some((r) => ((r.typed_per_filter_config as Obj | undefined) ?? {})[RATE_LIMIT_FILTER] !== undefined));
  };
  assert.equal(limited('catalog.default'), false, 'scope workload: not on the caller');
  assert.equal(limited('search.default'), true, 'scope caller (default): on the caller, as before');
});

test('without a workload-scoped limit or stream idle timeout the inbound listener is unchanged; STRICT keeps the per-port bucket', () => {
  const plainInput = load();
  const bare = generateInbound({ ...plainInput, backendPolicies: [] }, { namespace: 'default', name: 'catalog' });
  assert.ok(bare);
  const text = JSON.stringify(bare.listener);
  assert.doesNotMatch(text, /local_ratelimit|stream_idle_timeout|idle_timeout/);
  const strict = generateInbound(load(`
---
apiVersion: weft.dev/v1alpha1
kind: SecurityPolicy
metadata: { name: strict, namespace: default }
spec:
  mtls: { mode: STRICT }
`), { namespace: 'default', name: 'catalog' });
  assert.ok(strict);
  assertValidEnvoy(LISTENER, strict.listener);
  assert.deepEqual((strict.listener.filter_chains as Obj[]).map((c) => filterNames(c)), [[RATE_LIMIT_FILTER, 'envoy.filters.http.router'], ['envoy.filters.http.router']]);
});
