import { test } from 'node:test';
import assert from 'node:assert/strict';
import { adsServices } from '../../xds/protos.js';
import { decodeWireRequest, withWireRequests } from './discovery-request.js';

const method = adsServices().ads.StreamAggregatedResources!;
const encode = (req: object): Buffer => method.requestSerialize(req);
const full = (buf: Buffer): Record<string, unknown> => method.requestDeserialize(buf) as Record<string, unknown>;
const EDS = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';

test('an ACK decodes to what protobufjs gives, names lazily; namesBytes tell equal subscriptions apart', () => {
  const names = Array.from({ length: 500 }, (_, i) => `outbound|80||svc-${i}.default.svc.cluster.local`);
  const ack = { version_info: 'v1', resource_names: names, type_url: EDS, response_nonce: '7-12' };
  const buf = encode(ack);
  const fast = decodeWireRequest(buf);
  assert.ok(fast);
  const ref = full(buf);
  assert.equal(fast.version_info, ref.version_info);
  assert.equal(fast.type_url, ref.type_url);
  assert.equal(fast.response_nonce, ref.response_nonce);
  assert.deepEqual(fast.resource_names, ref.resource_names);
  // Same names, other version and nonce: same bytes. One name different, or reordered: different.
  const again = decodeWireRequest(encode({ ...ack, version_info: 'v2', response_nonce: '7-13' }));
  assert.ok(again?.namesBytes.equals(fast.namesBytes));
  const other = decodeWireRequest(encode({ ...ack, resource_names: [...names.slice(0, 499), 'outbound|80||x.default.svc.cluster.local'] }));
  assert.equal(other?.namesBytes.equals(fast.namesBytes), false);
  const reordered = decodeWireRequest(encode({ ...ack, resource_names: [...names].reverse() }));
  assert.equal(reordered?.namesBytes.equals(fast.namesBytes), false);
});

test('empty fields and non-ASCII names read as protobufjs reads them', () => {
  for (const req of [{ type_url: EDS }, { type_url: EDS, resource_names: ['é/ü', '*'] }, {}]) {
    const buf = encode(req);
    const fast = decodeWireRequest(buf);
    assert.ok(fast);
    const ref = full(buf);
    assert.equal(fast.type_url, ref.type_url);
    assert.equal(fast.version_info, ref.version_info);
    assert.equal(fast.response_nonce, ref.response_nonce);
    assert.deepEqual(fast.resource_names, ref.resource_names ?? []);
  }
});

test('node, error_detail and malformed input go to the full decoder', () => {
  assert.equal(decodeWireRequest(encode({ type_url: EDS, node: { id: 'n1' } })), undefined);
  assert.equal(decodeWireRequest(encode({ type_url: EDS, response_nonce: '1', error_detail: { code: 3, message: 'bad' } })), undefined);
  assert.equal(decodeWireRequest(Buffer.from([0x1a, 0x05, 0x61])), undefined, 'length past the end');
  assert.equal(decodeWireRequest(Buffer.from([0x08, 0x01])), undefined, 'a varint field');
  // The service definition falls back: a NACK reads in full.
  const ads = withWireRequests(adsServices().ads);
  const nack = ads.StreamAggregatedResources!.requestDeserialize(encode({ type_url: EDS, response_nonce: '1', error_detail: { code: 3, message: 'bad' } })) as { error_detail?: { message?: string } };
  assert.equal(nack.error_detail?.message, 'bad');
});
