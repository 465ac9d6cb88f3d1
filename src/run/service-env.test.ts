import { test } from 'node:test';
import assert from 'node:assert/strict';
import { envKey, serviceEnv, servicesFromConfig } from './service-env.js';

test('Services come from cluster names; TCP ones take the bound port of their listener', () => {
  const clusters = [
    'outbound|80||catalog.default.svc.cluster.local',
    'outbound|50051||inventory.default.svc.cluster.local',
    'outbound|9000||ledger.default.svc.cluster.local',
    'outbound|9100||vault.secure.svc.cluster.local',
    'inbound|8080||',
    'weft|no-backend',
  ];
  const listeners = ['outbound', 'inbound', 'tcp|ledger.default:9000', 'tcp|vault.secure:9100'];
  // vault's listener did not bind: no URL rather than a wrong one.
  const bound = new Map([['tcp|ledger.default:9000', 41000]]);
  const s = servicesFromConfig(clusters, listeners, (n) => bound.get(n));
  assert.deepEqual(s, [
    { name: 'catalog', namespace: 'default', port: 80, protocol: 'http' },
    { name: 'inventory', namespace: 'default', port: 50051, protocol: 'http' },
    { name: 'ledger', namespace: 'default', port: 9000, protocol: 'tcp', localPort: 41000 },
  ]);
});

test('WEFT_<SERVICE>_URL for the own namespace, WEFT_<SERVICE>_<NS>_URL for all, a URL per port', () => {
  const env = serviceEnv([
    { name: 'catalog-v2', namespace: 'default', port: 80, protocol: 'http' },
    { name: 'catalog-v2', namespace: 'default', port: 8443, protocol: 'http' },
    { name: 'ledger', namespace: 'default', port: 9000, protocol: 'tcp', localPort: 41000 },
    { name: 'payments', namespace: 'billing', port: 8080, protocol: 'http' },
  ], 'default');
  assert.deepEqual(env, {
    WEFT_CATALOG_V2_80_URL: 'http://catalog-v2.default',
    WEFT_CATALOG_V2_DEFAULT_URL: 'http://catalog-v2.default',
    WEFT_CATALOG_V2_URL: 'http://catalog-v2.default',
    WEFT_CATALOG_V2_8443_URL: 'http://catalog-v2.default:8443',
    WEFT_LEDGER_9000_URL: 'tcp://127.0.0.1:41000',
    WEFT_LEDGER_DEFAULT_URL: 'tcp://127.0.0.1:41000',
    WEFT_LEDGER_URL: 'tcp://127.0.0.1:41000',
    WEFT_PAYMENTS_BILLING_URL: 'http://payments.billing:8080',
  });
  assert.equal(envKey('a-b.c'), 'A_B_C');
});
