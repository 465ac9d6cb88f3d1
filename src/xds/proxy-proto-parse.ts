/**
 * Parsing of the Envoy protos for the proxy (see proxy-protos.ts): protobufjs only,
 * pruned to the types a proxy can receive. Runs in a short-lived child process
 * (proxy-protos-child.ts), so its allocations never grow the proxy's own heap; in
 * the proxy itself only when that child cannot run.
 */
import { createRequire } from 'node:module';
import { accessSync, constants } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import protobuf from 'protobufjs';
import { WeftError } from '../lib/errors.js';

const require = createRequire(import.meta.url);
const XDS_PKG = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
/** Include dirs of the Envoy API protos shipped inside @grpc/grpc-js-xds. */
export const PROTO_INCLUDE_DIRS = ['deps/envoy-api', 'deps/xds', 'deps/googleapis', 'deps/protoc-gen-validate'].map((d) => join(XDS_PKG, d));

/**
 * Files whose messages can reach a proxy (DiscoveryRequest/Response, the resources,
 * and every extension an Any in them may name; an Any of a type not listed stays
 * `{ type_url, value }`, as it did with proto-loader). The control plane's list
 * (protos.ts) also has the SDS service and the admin config dump, which a proxy never
 * decodes.
 */
export const PROXY_PROTO_FILES: readonly string[] = [
  'envoy/service/discovery/v3/discovery.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/jwt_authn/v3/config.proto',
  'envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/extensions/load_balancing_policies/ring_hash/v3/ring_hash.proto',
  'envoy/extensions/load_balancing_policies/round_robin/v3/round_robin.proto',
  'envoy/extensions/load_balancing_policies/least_request/v3/least_request.proto',
  'envoy/extensions/load_balancing_policies/maglev/v3/maglev.proto',
  'envoy/extensions/load_balancing_policies/random/v3/random.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/config/core/v3/health_check.proto',
  'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
  'envoy/config/trace/v3/opentelemetry.proto',
];

/** Parses `files`, then keeps only the types reachable from the messages they declare. */
export function loadProxyRoot(files: readonly string[]): protobuf.Root {
  // The annotation protos (validate, udpa, xds) extend descriptor.proto's options;
  // protobufjs bundles it as JSON but does not register it (proto-loader does the same).
  protobuf.common('descriptor', (require('protobufjs/google/protobuf/descriptor.json') as { nested: { google: { nested: { protobuf: { nested: Record<string, unknown> } } } } }).nested.google.nested.protobuf.nested);
  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string): string => {
    if (isAbsolute(target)) return target;
    for (const dir of PROTO_INCLUDE_DIRS) {
      const p = join(dir, target);
      try {
        accessSync(p, constants.R_OK);
        return p;
      } catch { /* next include dir */ }
    }
    return target;
  };
  try {
    root.loadSync([...files], { keepCase: true });
    root.resolveAll();
  } catch (e) {
    throw new WeftError('WEFT_ERR_INTERNAL', `cannot load the Envoy protos from ${XDS_PKG}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  prune(root, files);
  return root;
}

type Reflected = protobuf.Type | protobuf.Enum;

/**
 * Drops every type no listed file's message can reach (validate rules, annotations,
 * CEL and the rest of what imports drag in), every extension field, and options
 * and comments, which encoding and decoding never read (except `packed`).
 */
function prune(root: protobuf.Root, files: readonly string[]): void {
  const keep = new Set<Reflected>();
  const visit = (t: Reflected): void => {
    if (keep.has(t)) return;
    keep.add(t);
    // A kept nested type needs its parent message, which must then resolve too.
    if (t.parent instanceof protobuf.Type) visit(t.parent);
    if (!(t instanceof protobuf.Type)) return;
    for (const f of t.fieldsArray) if (f.resolvedType !== null) visit(f.resolvedType);
    for (const n of t.nestedArray) if (n instanceof protobuf.Type || n instanceof protobuf.Enum) visit(n);
  };
  const declaredIn = (o: protobuf.ReflectionObject): boolean => o.filename !== null && files.some((f) => o.filename!.endsWith(f));
  const roots = (ns: protobuf.NamespaceBase): void => {
    for (const o of ns.nestedArray) {
      if ((o instanceof protobuf.Type || o instanceof protobuf.Enum) && declaredIn(o)) visit(o);
      if (o instanceof protobuf.Namespace || o instanceof protobuf.Type) roots(o);
    }
  };
  roots(root);
  const removeUnkept = (ns: protobuf.NamespaceBase): void => {
    for (const o of [...ns.nestedArray]) {
      if (o instanceof protobuf.Type || o instanceof protobuf.Enum) {
        if (!keep.has(o)) { ns.remove(o); continue; }
      } else if (o instanceof protobuf.Service || o instanceof protobuf.Field) {
        ns.remove(o); // services and `extend` fields
        continue;
      }
      if (o instanceof protobuf.Namespace || o instanceof protobuf.Type) removeUnkept(o);
      if (o instanceof protobuf.Namespace && !(o instanceof protobuf.Type) && o.nestedArray.length === 0) ns.remove(o);
    }
  };
  removeUnkept(root);
  for (const t of keep) strip(t);
}

function strip(t: Reflected): void {
  const bare = (o: protobuf.ReflectionObject): void => {
    const packed = o.options?.packed as unknown;
    o.options = packed === undefined ? undefined : { packed };
    o.parsedOptions = null as unknown as protobuf.ReflectionObject['parsedOptions'];
    o.comment = null;
  };
  bare(t);
  if (t instanceof protobuf.Enum) {
    t.comments = {};
    (t as { valuesOptions?: unknown }).valuesOptions = undefined;
    return;
  }
  for (const f of t.fieldsArray) bare(f);
  for (const o of t.oneofsArray) bare(o);
}

