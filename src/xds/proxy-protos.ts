/**
 * The proxy's own view of Envoy's protos: protobufjs types only, no descriptors.
 *
 * @grpc/proto-loader builds a DescriptorProto object (and encodes file descriptor
 * buffers) for every message of every file it loads; the control plane needs those
 * (its gRPC services, proto checks), the proxy does not: it encodes DiscoveryRequests
 * and decodes DiscoveryResponses, nothing else. Here the same files (same package and
 * version as the control plane) are parsed by protobufjs in a short-lived child
 * process, pruned to the types a proxy can receive (proxy-proto-parse.ts), and handed
 * over as protobufjs JSON. The parser's allocations then never touch the proxy's heap:
 * parsing in-process grows V8's young generation to its maximum, which V8 keeps until
 * its memory reducer runs after tens of seconds of idleness (issue 4, idle RSS at ready
 * + 2 s: 97 MB through proto-loader, 84 MB parsing in-process, 77 MB this way;
 * bench/RESULTS.md).
 *
 * Decoded objects match what proto-loader produced with the control plane's options
 * (keepCase, longs and enums as strings, no defaults, Any unpacked to
 * `{ '@type', ...fields }`) except for one thing: no oneof markers (`rule: 'any'` beside
 * `any: true`), which compilers had to skip and dumps had to strip.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { loadProxyRoot, PROXY_PROTO_FILES } from './proxy-proto-parse.js';

/** protobufjs toObject options equal to the control plane's proto-loader options, minus `oneofs`. */
export const PROXY_DECODE_OPTIONS: protobuf.IConversionOptions = {
  longs: String,
  enums: String,
  defaults: false,
  oneofs: false,
  json: true,
};

/** The child takes ~0.5 s on a busy 2-core machine; plenty of slack before the in-process fallback. */
const CHILD_TIMEOUT_MS = 30_000;
const ADS_SERVICE = 'envoy.service.discovery.v3.AggregatedDiscoveryService';

let cachedRoot: protobuf.Root | undefined;

/** The pruned protobufjs root, loaded on first use. */
export function proxyProtoRoot(): protobuf.Root {
  cachedRoot ??= parseInChild() ?? loadProxyRoot(PROXY_PROTO_FILES);
  return cachedRoot;
}

/**
 * Synchronous on purpose (callers build a gRPC client right after). Undefined when the
 * child fails for any reason (e.g. running from TypeScript sources, where the compiled
 * script is absent): the caller then parses in-process, which costs memory only, and
 * reports a broken proto set itself.
 */
export function parseInChild(): protobuf.Root | undefined {
  try {
    const json = execFileSync(process.execPath, [fileURLToPath(new URL('./proxy-protos-child.js', import.meta.url))], {
      encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: CHILD_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'pipe'],
    });
    return protobuf.Root.fromJSON(JSON.parse(json) as protobuf.INamespace);
  } catch {
    return undefined;
  }
}

function codec(t: protobuf.Type): { serialize: (v: object) => Buffer; deserialize: (b: Buffer) => Record<string, unknown> } {
  return {
    serialize: (v) => {
      if (Array.isArray(v)) throw new TypeError(`cannot serialize an array as ${t.fullName}`);
      const w = t.encode(t.fromObject(v)).finish();
      return Buffer.from(w.buffer, w.byteOffset, w.byteLength);
    },
    deserialize: (b) => t.toObject(t.decode(b), PROXY_DECODE_OPTIONS),
  };
}

let cachedClient: grpc.ServiceClientConstructor | undefined;

/**
 * A gRPC client constructor for ADS (StreamAggregatedResources and
 * DeltaAggregatedResources) encoding and decoding with the pruned root.
 */
export function proxyAdsClientConstructor(): grpc.ServiceClientConstructor {
  if (cachedClient !== undefined) return cachedClient;
  const root = proxyProtoRoot();
  const req = codec(root.lookupType('envoy.service.discovery.v3.DiscoveryRequest'));
  const res = codec(root.lookupType('envoy.service.discovery.v3.DiscoveryResponse'));
  const deltaReq = codec(root.lookupType('envoy.service.discovery.v3.DeltaDiscoveryRequest'));
  const deltaRes = codec(root.lookupType('envoy.service.discovery.v3.DeltaDiscoveryResponse'));
  cachedClient = grpc.makeGenericClientConstructor({
    StreamAggregatedResources: {
      path: `/${ADS_SERVICE}/StreamAggregatedResources`,
      requestStream: true,
      responseStream: true,
      requestSerialize: req.serialize,
      requestDeserialize: req.deserialize,
      responseSerialize: res.serialize,
      responseDeserialize: res.deserialize,
      originalName: 'streamAggregatedResources',
    },
    // Incremental xDS (src/proxy/xds-client/delta-ads-client.ts); its messages are in discovery.proto, kept whole.
    DeltaAggregatedResources: {
      path: `/${ADS_SERVICE}/DeltaAggregatedResources`,
      requestStream: true,
      responseStream: true,
      requestSerialize: deltaReq.serialize,
      requestDeserialize: deltaReq.deserialize,
      responseSerialize: deltaRes.serialize,
      responseDeserialize: deltaRes.deserialize,
      originalName: 'deltaAggregatedResources',
    },
  }, 'AggregatedDiscoveryService');
  return cachedClient;
}
