// The network RBAC filter: the chain's filters in order on a connection, what it may
// match (principal, addresses, ports, SNI), and what it refuses.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { DownstreamConnection } from '../types.js';
import { setRbacDecisionSink, type RbacDecision } from './decision-log.js';
import { attachNetworkRbac, compileNetworkRbac, evaluateNetworkRbac, networkRbacOf } from './network.js';

const decisions: RbacDecision[] = [];
let restore: () => void;
before(() => { restore = setRbacDecisionSink((d) => decisions.push(d)); });
after(() => restore());

const conn = (o: Partial<DownstreamConnection> & { localAddress?: string } = {}) => ({ remoteAddress: '10.0.0.5', remotePort: 5000, localPort: 15006, tls: true, peerPrincipal: 'spiffe://weft.test/ns/shop/sa/web', serverName: 'outbound_.9000_._.db.shop.svc.cluster.local', localAddress: '10.0.0.9', ...o });
const rbac = (name: string, action: string, policies: Record<string, unknown>) => compileNetworkRbac(name, { stat_prefix: 's', rules: { action, policies } }, name);
const any = [{ any: true }];

describe('network RBAC', () => {
  test('LOG logs and continues, DENY denies first, then ALLOW decides', () => {
    decisions.length = 0;
    const chain = [
      rbac('audit', 'LOG', { 'ns.a.audit[rule-0]': { permissions: any, principals: [{ direct_remote_ip: { address_prefix: '10.0.0.0', prefix_len: 8 } }] } }),
      rbac('deny', 'DENY', { 'ns.a.no-ops[rule-0]': { permissions: any, principals: [{ authenticated: { principal_name: { prefix: 'spiffe://weft.test/ns/ops/' } } }] } }),
      rbac('allow', 'ALLOW', { 'ns.a.db[rule-0]': { permissions: [{ destination_port: 15006 }], principals: [{ authenticated: { principal_name: { suffix: '/sa/web' } } }] } }),
    ];
    assert.equal(evaluateNetworkRbac(chain, conn()).allowed, true);
    assert.deepEqual(decisions.map((d) => [d.decision, d.policy]), [['logged', 'ns.a.audit[rule-0]']]);
    assert.deepEqual(evaluateNetworkRbac(chain, conn({ peerPrincipal: 'spiffe://weft.test/ns/ops/sa/web' })), { allowed: false, policy: 'ns.a.no-ops[rule-0]', filter: 'deny' });
    assert.deepEqual(evaluateNetworkRbac(chain, conn({ peerPrincipal: 'spiffe://weft.test/ns/shop/sa/batch' })), { allowed: false, policy: undefined, filter: 'allow' });
    assert.equal(evaluateNetworkRbac(chain, conn({ localPort: 9000 })).allowed, false);
  });

  test('destination_ip uses the local address; requested_server_name the SNI', () => {
    const chain = [rbac('allow', 'ALLOW', { p: { permissions: [{ and_rules: { rules: [
      { destination_ip: { address_prefix: '10.0.0.0', prefix_len: 24 } },
      { requested_server_name: { suffix: '.db.shop.svc.cluster.local' } },
    ] } }], principals: any } })];
    assert.equal(evaluateNetworkRbac(chain, conn()).allowed, true);
    assert.equal(evaluateNetworkRbac(chain, conn({ localAddress: '10.0.1.9' })).allowed, false);
    assert.equal(evaluateNetworkRbac(chain, conn({ serverName: undefined })).allowed, false);
  });

  test('filters ride beside their TCP proxy config', () => {
    const tcp = Object.freeze({ statPrefix: 't', cluster: 'c', idleTimeoutMs: 0 });
    assert.deepEqual(networkRbacOf(tcp), []);
    const f = rbac('allow', 'ALLOW', {});
    attachNetworkRbac(tcp, [f]);
    assert.deepEqual(networkRbacOf(tcp), [f]);
  });

  test('HTTP matchers, unified matchers and unknown fields are refused', () => {
    assert.throws(() => rbac('x', 'ALLOW', { p: { permissions: [{ url_path: { path: { exact: '/' } } }], principals: any } }), /network RBAC/);
    assert.throws(() => rbac('x', 'ALLOW', { p: { permissions: any, principals: [{ header: { name: 'a' } }] } }), /network RBAC/);
    assert.throws(() => compileNetworkRbac('x', { stat_prefix: 's', matcher: {} }, 'x'), /unified matcher/);
    assert.throws(() => compileNetworkRbac('x', { stat_prefix: 's', enforcement_type: 'SOMETIMES' }, 'x'), /unsupported value/);
    assert.doesNotThrow(() => compileNetworkRbac('x', { stat_prefix: 's', enforcement_type: 'CONTINUOUS' }, 'x'));
  });
});
