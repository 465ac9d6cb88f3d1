import { test } from 'node:test';
import assert from 'node:assert/strict';
import { adsServices } from './protos.js';

test('ADS and SDS service definitions load from the bundled Envoy protos', () => {
  const { ads, sds } = adsServices();
  assert.ok(ads.StreamAggregatedResources, 'ADS SotW method');
  assert.ok(ads.DeltaAggregatedResources, 'ADS delta method');
  assert.ok(sds.StreamSecrets, 'SDS method');
});
