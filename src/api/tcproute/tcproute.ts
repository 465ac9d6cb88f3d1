import { Type, type Static } from '@sinclair/typebox';
import { defineKind, type Reference } from '../descriptor.js';
import {
  BackendRef,
  GATEWAY_GROUP,
  ParentRefs,
  SectionName,
  backendsColumn,
  defaultBackendNamespace,
  defaultParentRefs,
  parentReferences,
  parentsColumn,
  serviceReference,
  validateBackendRefs,
  validateParentRefs,
  validateRuleNames,
} from '../gateway/common.js';

// Shapes follow sigs.k8s.io/gateway-api apis/v1alpha2/tcproute_types.go (v1 has the
// same fields and allows a single rule; both versions are accepted).

export const TCPRouteRule = Type.Object(
  {
    name: Type.Optional(SectionName),
    backendRefs: Type.Array(BackendRef, { minItems: 1, maxItems: 16 }),
  },
  { additionalProperties: false },
);
export type TCPRouteRule = Static<typeof TCPRouteRule>;

export const TCPRouteSpec = Type.Object(
  {
    parentRefs: Type.Optional(ParentRefs),
    rules: Type.Array(TCPRouteRule, { minItems: 1, maxItems: 16 }),
  },
  { additionalProperties: false },
);
export type TCPRouteSpec = Static<typeof TCPRouteSpec>;

export const tcpRouteKind = defineKind<TCPRouteSpec>({
  kind: 'TCPRoute',
  group: GATEWAY_GROUP,
  versions: ['v1alpha2', 'v1'],
  plural: 'tcproutes',
  singular: 'tcproute',
  shortNames: [],
  namespaced: true,
  description: 'Gateway API TCPRoute, mesh flavour: connections to a parent Service port are split among backend Services by weight.',
  specSchema: TCPRouteSpec,
  applyDefaults(r) {
    defaultParentRefs(r);
    for (const rule of r.spec.rules) for (const b of rule.backendRefs) defaultBackendNamespace(b, r);
  },
  validate(r, ctx) {
    validateParentRefs(r, ctx);
    validateRuleNames(r.spec.rules, ctx);
    // A TCP connection carries nothing to choose a rule by: several rules would merely
    // be merged, so upstream v1 allows one. v1alpha2 allows more; they are merged.
    r.spec.rules.forEach((rule, i) => validateBackendRefs(rule.backendRefs, `spec.rules[${i}].backendRefs`, ctx));
  },
  references(r) {
    const refs: Reference[] = parentReferences(r);
    r.spec.rules.forEach((rule, i) => rule.backendRefs.forEach((b, j) => refs.push(...serviceReference(b, r, `spec.rules[${i}].backendRefs[${j}]`))));
    return refs;
  },
  columns: [
    { header: 'PARENTS', value: parentsColumn },
    { header: 'BACKENDS', value: (r) => backendsColumn(r.spec.rules.flatMap((rule) => rule.backendRefs)) },
  ],
});
