import type * as grpc from '@grpc/grpc-js';
import { META } from '../registry/node-metadata.js';
import type { XdsNode } from '../registry/workload-registry.js';

/**
 * Over mTLS the client's certificate says who it is: its SPIFFE ID's namespace
 * and service account replace what the node metadata claims, so a workload
 * registers (and is named in peers' SAN checks) as the identity it proved.
 * Plaintext (loopback) streams keep their metadata. SotW and delta alike.
 */
export function withPeerIdentity(node: XdsNode, call: Pick<grpc.ServerDuplexStream<unknown, unknown>, 'getAuthContext'>): XdsNode {
  const san = call.getAuthContext().sslPeerCertificate?.subjectaltname ?? '';
  const m = /(?:^|, )URI:spiffe:\/\/[^/]+\/ns\/([^/,]+)\/sa\/([^/,]+)(?:,|$)/.exec(san);
  if (m === null) return node;
  const fields = { ...(node.metadata?.fields ?? {}) };
  fields[META.namespace] = { stringValue: m[1]! };
  fields[META.serviceAccount] = { stringValue: m[2]! };
  return { ...node, metadata: { fields } };
}
