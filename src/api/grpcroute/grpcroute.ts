import { Type, type Static } from '@sinclair/typebox';
import { defineKind, type Reference, type ValidationContext } from '../descriptor.js';
import {
  BackendObjectReference,
  Enum,
  GATEWAY_GROUP,
  HTTPHeaderFilter,
  HTTPRequestMirrorFilter,
  HeaderName,
  Hostnames,
  LocalObjectReference,
  ParentRefs,
  SectionName,
  SessionPersistence,
  Weight,
  backendsColumn,
  defaultBackendNamespace,
  defaultParentRefs,
  hostnamesColumn,
  mirrorReferences,
  parentReferences,
  parentsColumn,
  serviceReference,
  validateBackendRefs,
  validateCommonFilter,
  validateDuration,
  validateFilterList,
  validateParentRefs,
  validateRegex,
  validateRuleNames,
  validateUniqueNames,
} from '../gateway/common.js';

// Shapes follow sigs.k8s.io/gateway-api apis/v1/grpcroute_types.go.

export const GRPC_MATCH_TYPES = ['Exact', 'RegularExpression'] as const;
export const GRPC_FILTER_TYPES = ['ResponseHeaderModifier', 'RequestHeaderModifier', 'RequestMirror', 'ExtensionRef'] as const;

export const GRPCMethodMatch = Type.Object(
  {
    type: Enum(GRPC_MATCH_TYPES, { default: 'Exact' }),
    /** Fully-qualified service name, e.g. `weft.demo.Inventory`. */
    service: Type.Optional(Type.String({ maxLength: 1024 })),
    method: Type.Optional(Type.String({ maxLength: 1024 })),
  },
  { additionalProperties: false },
);
export type GRPCMethodMatch = Static<typeof GRPCMethodMatch>;

export const GRPCHeaderMatch = Type.Object(
  {
    type: Enum(GRPC_MATCH_TYPES, { default: 'Exact' }),
    name: HeaderName,
    value: Type.String({ minLength: 1, maxLength: 4096 }),
  },
  { additionalProperties: false },
);
export type GRPCHeaderMatch = Static<typeof GRPCHeaderMatch>;

export const GRPCRouteMatch = Type.Object(
  {
    method: Type.Optional(GRPCMethodMatch),
    headers: Type.Optional(Type.Array(GRPCHeaderMatch, { maxItems: 16 })),
  },
  { additionalProperties: false },
);
export type GRPCRouteMatch = Static<typeof GRPCRouteMatch>;

export const GRPCRouteFilter = Type.Object(
  {
    type: Enum(GRPC_FILTER_TYPES),
    requestHeaderModifier: Type.Optional(HTTPHeaderFilter),
    responseHeaderModifier: Type.Optional(HTTPHeaderFilter),
    requestMirror: Type.Optional(HTTPRequestMirrorFilter),
    extensionRef: Type.Optional(LocalObjectReference),
  },
  { additionalProperties: false },
);
export type GRPCRouteFilter = Static<typeof GRPCRouteFilter>;

export const GRPCBackendRef = Type.Object(
  {
    ...BackendObjectReference.properties,
    weight: Weight,
    filters: Type.Optional(Type.Array(GRPCRouteFilter, { maxItems: 16 })),
  },
  { additionalProperties: false },
);
export type GRPCBackendRef = Static<typeof GRPCBackendRef>;

export const GRPCRouteRule = Type.Object(
  {
    name: Type.Optional(SectionName),
    /** None: every request to the parent matches. */
    matches: Type.Optional(Type.Array(GRPCRouteMatch, { maxItems: 64 })),
    filters: Type.Optional(Type.Array(GRPCRouteFilter, { maxItems: 16 })),
    backendRefs: Type.Optional(Type.Array(GRPCBackendRef, { maxItems: 16 })),
    sessionPersistence: Type.Optional(SessionPersistence),
  },
  { additionalProperties: false },
);
export type GRPCRouteRule = Static<typeof GRPCRouteRule>;

export const GRPCRouteSpec = Type.Object(
  {
    parentRefs: Type.Optional(ParentRefs),
    hostnames: Type.Optional(Hostnames),
    rules: Type.Array(GRPCRouteRule, { maxItems: 16, default: [] }),
  },
  { additionalProperties: false },
);
export type GRPCRouteSpec = Static<typeof GRPCRouteSpec>;

const SERVICE_NAME = /^\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$/i;
const METHOD_NAME = /^[A-Za-z_][A-Za-z_0-9]*$/;

function validateMethodMatch(m: GRPCMethodMatch, at: string, ctx: ValidationContext): void {
  if (m.service === undefined && m.method === undefined) {
    ctx.error(at, 'one or both of service and method must be specified');
    return;
  }
  if (m.type === 'RegularExpression') {
    if (m.service !== undefined) validateRegex(m.service, `${at}.service`, ctx);
    if (m.method !== undefined) validateRegex(m.method, `${at}.method`, ctx);
    return;
  }
  if (m.service !== undefined && !SERVICE_NAME.test(m.service)) ctx.error(`${at}.service`, `"${m.service}" is not a gRPC service name (package.Service)`);
  if (m.method !== undefined && !METHOD_NAME.test(m.method)) ctx.error(`${at}.method`, `"${m.method}" is not a gRPC method name`);
}

function validateFilters(filters: readonly GRPCRouteFilter[] | undefined, at: string, ctx: ValidationContext): void {
  for (const f of validateFilterList(filters, at, ctx)) validateCommonFilter(f, `${at}[${(filters ?? []).indexOf(f)}]`, ctx);
}

function ruleBackendsAndMirrors(rule: GRPCRouteRule): { requestMirror?: HTTPRequestMirrorFilter }[] {
  return [...(rule.filters ?? []), ...(rule.backendRefs ?? []).flatMap((b) => b.filters ?? [])];
}

export const grpcRouteKind = defineKind<GRPCRouteSpec>({
  kind: 'GRPCRoute',
  group: GATEWAY_GROUP,
  versions: ['v1'],
  plural: 'grpcroutes',
  singular: 'grpcroute',
  shortNames: [],
  namespaced: true,
  description: 'Gateway API GRPCRoute, mesh (GAMMA) flavour: how gRPC calls to a parent Service are matched by service, method and headers and split among backend Services.',
  specSchema: GRPCRouteSpec,
  applyDefaults(r) {
    defaultParentRefs(r);
    for (const rule of r.spec.rules) {
      for (const b of rule.backendRefs ?? []) defaultBackendNamespace(b, r);
      for (const f of ruleBackendsAndMirrors(rule)) if (f.requestMirror) defaultBackendNamespace(f.requestMirror.backendRef, r);
    }
  },
  validate(r, ctx) {
    validateParentRefs(r, ctx);
    validateRuleNames(r.spec.rules, ctx);
    r.spec.rules.forEach((rule, i) => {
      const at = `spec.rules[${i}]`;
      rule.matches?.forEach((m, j) => {
        if (m.method) validateMethodMatch(m.method, `${at}.matches[${j}].method`, ctx);
        validateUniqueNames(m.headers, `${at}.matches[${j}].headers`, ctx, true);
        m.headers?.forEach((h, k) => {
          if (h.type === 'RegularExpression') validateRegex(h.value, `${at}.matches[${j}].headers[${k}].value`, ctx);
        });
      });
      validateFilters(rule.filters, `${at}.filters`, ctx);
      validateBackendRefs(rule.backendRefs, `${at}.backendRefs`, ctx);
      rule.backendRefs?.forEach((b, j) => validateFilters(b.filters, `${at}.backendRefs[${j}].filters`, ctx));
      validateDuration(rule.sessionPersistence?.absoluteTimeout, `${at}.sessionPersistence.absoluteTimeout`, ctx);
      validateDuration(rule.sessionPersistence?.idleTimeout, `${at}.sessionPersistence.idleTimeout`, ctx);
    });
    const total = r.spec.rules.reduce((n, rule) => n + (rule.matches?.length ?? 0), 0);
    if (total > 128) ctx.error('spec.rules', `has ${total} matches in all; at most 128 are allowed`);
  },
  references(r) {
    const refs: Reference[] = parentReferences(r);
    r.spec.rules.forEach((rule, i) => {
      refs.push(...mirrorReferences(rule.filters, r, `spec.rules[${i}].filters`));
      rule.backendRefs?.forEach((b, j) => {
        refs.push(...serviceReference(b, r, `spec.rules[${i}].backendRefs[${j}]`));
        refs.push(...mirrorReferences(b.filters, r, `spec.rules[${i}].backendRefs[${j}].filters`));
      });
    });
    return refs;
  },
  columns: [
    { header: 'PARENTS', value: parentsColumn },
    { header: 'HOSTNAMES', value: hostnamesColumn },
    { header: 'RULES', value: (r) => String(r.spec.rules.length) },
    { header: 'BACKENDS', value: (r) => backendsColumn(r.spec.rules.flatMap((rule) => rule.backendRefs ?? [])) },
  ],
});
