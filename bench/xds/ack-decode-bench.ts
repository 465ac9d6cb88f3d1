/**
 * `node dist/bench/xds/ack-decode-bench.js [NAMES] [ITERATIONS]`: the cost of
 * reading one SotW ACK on the control plane, protobufjs's full decode (what
 * grpc-js did before) against discovery-request.ts's wire decoder plus the byte
 * comparison the ADS server does for a repeated subscription. CPU only, one
 * process, bounded by ITERATIONS (default 20,000; at most 1,000,000).
 */
import { adsServices } from '../../src/xds/protos.js';
import { decodeWireRequest } from '../../src/control/xds/discovery-request.js';
import { CLUSTER_LOAD_ASSIGNMENT } from '../../src/xds/type-urls.js';

const names = Math.max(1, Math.min(Number(process.argv[2] ?? 500) || 500, 100_000));
const iterations = Math.max(100, Math.min(Number(process.argv[3] ?? 20_000) || 20_000, 1_000_000));
const method = adsServices().ads.StreamAggregatedResources!;
const subscription = Array.from({ length: names }, (_, i) => `outbound|80||svc-${i}.default.svc.cluster.local`);
const ack = method.requestSerialize({ version_info: 'a1b2c3d4e5f60718', resource_names: subscription, type_url: CLUSTER_LOAD_ASSIGNMENT, response_nonce: '17-42' });
const held = Buffer.from(decodeWireRequest(ack)!.namesBytes);

const cases: [string, () => number][] = [
  ['protobufjs full decode', () => (method.requestDeserialize(ack) as { resource_names: string[] }).resource_names.length],
  ['wire decode + namesBytes.equals', () => (decodeWireRequest(ack)!.namesBytes.equals(held) ? 1 : 0)],
];
console.log(`one EDS ACK of ${names} names (${ack.length} bytes), ${iterations} iterations per case, best of 3:`);
for (const [name, run] of cases) {
  let best = Infinity;
  let sink = 0;
  for (let round = 0; round < 3; round++) {
    const t0 = performance.now();
    for (let i = 0; i < iterations; i++) sink += run();
    best = Math.min(best, ((performance.now() - t0) / iterations) * 1000);
  }
  console.log(`  ${name.padEnd(34)} ${best.toFixed(1).padStart(7)} µs per ACK (check ${sink})`);
}
