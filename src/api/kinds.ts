import type { KindDescriptor } from './descriptor.js';
import { backendPolicyKind } from './backendpolicy/backendpolicy.js';
import { grpcRouteKind } from './grpcroute/grpcroute.js';
import { httpRouteKind } from './httproute/httproute.js';
import { meshKind } from './mesh/mesh.js';
import { securityPolicyKind } from './securitypolicy/securitypolicy.js';
import { serviceKind } from './service/service.js';
import { tcpRouteKind } from './tcproute/tcproute.js';
import { workloadKind } from './workload/workload.js';

/** Every kind Weft serves, in the order `weft get all` and docs list them. */
export const ALL_KINDS: readonly KindDescriptor[] = [
  meshKind as KindDescriptor,
  serviceKind as KindDescriptor,
  workloadKind as KindDescriptor,
  httpRouteKind as KindDescriptor,
  grpcRouteKind as KindDescriptor,
  tcpRouteKind as KindDescriptor,
  backendPolicyKind as KindDescriptor,
  securityPolicyKind as KindDescriptor,
];
