import { Type, type Static } from '@sinclair/typebox';
import { defineKind, type Reference, type ValidationContext } from '../descriptor.js';
import {
  BackendObjectReference,
  Duration,
  Enum,
  GATEWAY_GROUP,
  HTTPHeaderFilter,
  HTTPRequestMirrorFilter,
  HeaderName,
  Hostnames,
  LocalObjectReference,
  ParentRefs,
  PortNumber,
  PreciseHostname,
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

// Shapes follow sigs.k8s.io/gateway-api apis/v1/httproute_types.go (standard channel,
// plus `retry` and `sessionPersistence` from the experimental one).

export const PATH_MATCH_TYPES = ['Exact', 'PathPrefix', 'RegularExpression'] as const;
export const HEADER_MATCH_TYPES = ['Exact', 'RegularExpression'] as const;
export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;
export const REDIRECT_STATUS_CODES = [301, 302, 303, 307, 308] as const;
export const HTTP_FILTER_TYPES = ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestMirror', 'RequestRedirect', 'URLRewrite', 'ExtensionRef', 'CORS'] as const;

export const HTTPPathMatch = Type.Object(
  {
    type: Enum(PATH_MATCH_TYPES, { default: 'PathPrefix' }),
    value: Type.String({ maxLength: 1024, default: '/' }),
  },
  { additionalProperties: false },
);
export type HTTPPathMatch = Static<typeof HTTPPathMatch>;

export const HTTPHeaderMatch = Type.Object(
  {
    type: Enum(HEADER_MATCH_TYPES, { default: 'Exact' }),
    name: HeaderName,
    value: Type.String({ minLength: 1, maxLength: 4096 }),
  },
  { additionalProperties: false },
);
export type HTTPHeaderMatch = Static<typeof HTTPHeaderMatch>;

export const HTTPQueryParamMatch = Type.Object(
  {
    type: Enum(HEADER_MATCH_TYPES, { default: 'Exact' }),
    name: HeaderName,
    value: Type.String({ minLength: 1, maxLength: 1024 }),
  },
  { additionalProperties: false },
);
export type HTTPQueryParamMatch = Static<typeof HTTPQueryParamMatch>;

export const HTTPRouteMatch = Type.Object(
  {
    path: { ...HTTPPathMatch, default: { type: 'PathPrefix', value: '/' } } as typeof HTTPPathMatch,
    headers: Type.Optional(Type.Array(HTTPHeaderMatch, { maxItems: 16 })),
    queryParams: Type.Optional(Type.Array(HTTPQueryParamMatch, { maxItems: 16 })),
    method: Type.Optional(Enum(HTTP_METHODS)),
  },
  { additionalProperties: false },
);
export type HTTPRouteMatch = Static<typeof HTTPRouteMatch>;

export const HTTPPathModifier = Type.Object(
  {
    type: Enum(['ReplaceFullPath', 'ReplacePrefixMatch']),
    replaceFullPath: Type.Optional(Type.String({ maxLength: 1024 })),
    replacePrefixMatch: Type.Optional(Type.String({ maxLength: 1024 })),
  },
  { additionalProperties: false },
);
export type HTTPPathModifier = Static<typeof HTTPPathModifier>;

export const HTTPRequestRedirectFilter = Type.Object(
  {
    scheme: Type.Optional(Enum(['http', 'https'])),
    hostname: Type.Optional(PreciseHostname),
    path: Type.Optional(HTTPPathModifier),
    port: Type.Optional(PortNumber),
    statusCode: Type.Unsafe<(typeof REDIRECT_STATUS_CODES)[number]>({ type: 'integer', enum: [...REDIRECT_STATUS_CODES], default: 302 }),
  },
  { additionalProperties: false },
);
export type HTTPRequestRedirectFilter = Static<typeof HTTPRequestRedirectFilter>;

export const HTTPURLRewriteFilter = Type.Object(
  { hostname: Type.Optional(PreciseHostname), path: Type.Optional(HTTPPathModifier) },
  { additionalProperties: false },
);
export type HTTPURLRewriteFilter = Static<typeof HTTPURLRewriteFilter>;

const CORSOrigin = Type.String({ minLength: 1, maxLength: 253, pattern: '(^\\*$)|(^(http(s)?):\\/\\/(((\\*\\.)?([a-zA-Z0-9\\-]+\\.)*[a-zA-Z0-9-]+|\\*)(:([0-9]{1,5}))?)$)' });

export const HTTPCORSFilter = Type.Object(
  {
    allowOrigins: Type.Optional(Type.Array(CORSOrigin, { maxItems: 64 })),
    allowCredentials: Type.Optional(Type.Boolean()),
    allowMethods: Type.Optional(Type.Array(Enum([...HTTP_METHODS, '*']), { maxItems: 9 })),
    allowHeaders: Type.Optional(Type.Array(HeaderName, { maxItems: 64 })),
    exposeHeaders: Type.Optional(Type.Array(HeaderName, { maxItems: 64 })),
    maxAge: Type.Integer({ minimum: 1, default: 5 }),
  },
  { additionalProperties: false },
);
export type HTTPCORSFilter = Static<typeof HTTPCORSFilter>;

export const HTTPRouteFilter = Type.Object(
  {
    type: Enum(HTTP_FILTER_TYPES),
    requestHeaderModifier: Type.Optional(HTTPHeaderFilter),
    responseHeaderModifier: Type.Optional(HTTPHeaderFilter),
    requestMirror: Type.Optional(HTTPRequestMirrorFilter),
    requestRedirect: Type.Optional(HTTPRequestRedirectFilter),
    urlRewrite: Type.Optional(HTTPURLRewriteFilter),
    cors: Type.Optional(HTTPCORSFilter),
    extensionRef: Type.Optional(LocalObjectReference),
  },
  { additionalProperties: false },
);
export type HTTPRouteFilter = Static<typeof HTTPRouteFilter>;

export const HTTPBackendRef = Type.Object(
  {
    ...BackendObjectReference.properties,
    weight: Weight,
    filters: Type.Optional(Type.Array(HTTPRouteFilter, { maxItems: 16 })),
  },
  { additionalProperties: false },
);
export type HTTPBackendRef = Static<typeof HTTPBackendRef>;

export const HTTPRouteTimeouts = Type.Object(
  {
    request: Type.Optional(Duration),
    backendRequest: Type.Optional(Duration),
  },
  { additionalProperties: false },
);
export type HTTPRouteTimeouts = Static<typeof HTTPRouteTimeouts>;

/** Experimental channel (GEP-1731); Istio and Linkerd accept it. */
export const HTTPRouteRetry = Type.Object(
  {
    codes: Type.Optional(Type.Array(Type.Integer({ minimum: 400, maximum: 599 }), { uniqueItems: true })),
    attempts: Type.Optional(Type.Integer({ minimum: 1 })),
    backoff: Type.Optional(Duration),
  },
  { additionalProperties: false },
);
export type HTTPRouteRetry = Static<typeof HTTPRouteRetry>;

const DEFAULT_MATCH = { path: { type: 'PathPrefix', value: '/' } };

export const HTTPRouteRule = Type.Object(
  {
    name: Type.Optional(SectionName),
    matches: Type.Array(HTTPRouteMatch, { maxItems: 64, default: [DEFAULT_MATCH] }),
    filters: Type.Optional(Type.Array(HTTPRouteFilter, { maxItems: 16 })),
    backendRefs: Type.Optional(Type.Array(HTTPBackendRef, { maxItems: 16 })),
    timeouts: Type.Optional(HTTPRouteTimeouts),
    retry: Type.Optional(HTTPRouteRetry),
    sessionPersistence: Type.Optional(SessionPersistence),
  },
  { additionalProperties: false },
);
export type HTTPRouteRule = Static<typeof HTTPRouteRule>;

export const HTTPRouteSpec = Type.Object(
  {
    parentRefs: Type.Optional(ParentRefs),
    hostnames: Type.Optional(Hostnames),
    rules: Type.Array(HTTPRouteRule, { minItems: 1, maxItems: 16, default: [{ matches: [DEFAULT_MATCH] }] }),
  },
  { additionalProperties: false },
);
export type HTTPRouteSpec = Static<typeof HTTPRouteSpec>;

/** Characters upstream allows in Exact and PathPrefix paths. */
const PATH_CHARS = /^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$/;

function validatePathValue(value: string, at: string, ctx: ValidationContext): void {
  if (!value.startsWith('/')) return ctx.error(at, 'must be an absolute path starting with "/"');
  for (const bad of ['//', '/./', '/../', '%2f', '%2F', '#']) if (value.includes(bad)) return ctx.error(at, `must not contain "${bad}"`);
  if (value.endsWith('/..') || value.endsWith('/.')) return ctx.error(at, 'must not end with "/." or "/.."');
  if (!PATH_CHARS.test(value)) ctx.error(at, 'contains characters not allowed in a path');
}

function validatePathModifier(p: HTTPPathModifier, matches: readonly HTTPRouteMatch[], at: string, ctx: ValidationContext): void {
  if (p.type === 'ReplaceFullPath') {
    if (p.replaceFullPath === undefined) ctx.error(`${at}.replaceFullPath`, 'is required when type is ReplaceFullPath');
    if (p.replacePrefixMatch !== undefined) ctx.error(`${at}.replacePrefixMatch`, 'must not be set when type is ReplaceFullPath');
  } else {
    if (p.replacePrefixMatch === undefined) ctx.error(`${at}.replacePrefixMatch`, 'is required when type is ReplacePrefixMatch');
    if (p.replaceFullPath !== undefined) ctx.error(`${at}.replaceFullPath`, 'must not be set when type is ReplacePrefixMatch');
    if (matches.length !== 1 || matches[0]?.path.type !== 'PathPrefix') ctx.error(`${at}.type`, 'ReplacePrefixMatch needs exactly one match in the rule, of type PathPrefix');
  }
  const value = p.replaceFullPath ?? p.replacePrefixMatch;
  if (value !== undefined && value !== '' && !value.startsWith('/')) ctx.error(`${at}.${p.type === 'ReplaceFullPath' ? 'replaceFullPath' : 'replacePrefixMatch'}`, 'must start with "/"');
}

function validateFilters(filters: readonly HTTPRouteFilter[] | undefined, matches: readonly HTTPRouteMatch[], at: string, ctx: ValidationContext): void {
  // Only the well-formed filters come back; each keeps its own index for paths.
  for (const f of validateFilterList(filters, at, ctx)) {
    const here = `${at}[${(filters ?? []).indexOf(f)}]`;
    validateCommonFilter(f, here, ctx);
    if (f.requestRedirect?.path) validatePathModifier(f.requestRedirect.path, matches, `${here}.requestRedirect.path`, ctx);
    if (f.urlRewrite?.path) validatePathModifier(f.urlRewrite.path, matches, `${here}.urlRewrite.path`, ctx);
    if (f.cors) {
      for (const list of ['allowOrigins', 'allowMethods', 'allowHeaders'] as const) {
        const v: readonly string[] = f.cors[list] ?? [];
        if (v.includes('*') && v.length > 1) ctx.error(`${here}.cors.${list}`, 'cannot contain "*" alongside other values');
      }
    }
  }
}

function validateMatch(m: HTTPRouteMatch, at: string, ctx: ValidationContext): void {
  if (m.path.type === 'RegularExpression') validateRegex(m.path.value, `${at}.path.value`, ctx);
  else validatePathValue(m.path.value, `${at}.path.value`, ctx);
  validateUniqueNames(m.headers, `${at}.headers`, ctx, true);
  validateUniqueNames(m.queryParams, `${at}.queryParams`, ctx, false);
  m.headers?.forEach((h, i) => {
    if (h.type === 'RegularExpression') validateRegex(h.value, `${at}.headers[${i}].value`, ctx);
  });
  m.queryParams?.forEach((q, i) => {
    if (q.type === 'RegularExpression') validateRegex(q.value, `${at}.queryParams[${i}].value`, ctx);
  });
}

function validateRule(rule: HTTPRouteRule, at: string, ctx: ValidationContext): void {
  rule.matches.forEach((m, j) => validateMatch(m, `${at}.matches[${j}]`, ctx));
  validateFilters(rule.filters, rule.matches, `${at}.filters`, ctx);
  if ((rule.backendRefs?.length ?? 0) > 0 && rule.filters?.some((f) => f.type === 'RequestRedirect')) {
    ctx.error(`${at}.filters`, 'a RequestRedirect filter must not be used together with backendRefs');
  }
  validateBackendRefs(rule.backendRefs, `${at}.backendRefs`, ctx);
  rule.backendRefs?.forEach((b, j) => validateFilters(b.filters, rule.matches, `${at}.backendRefs[${j}].filters`, ctx));
  if (rule.timeouts) {
    const request = validateDuration(rule.timeouts.request, `${at}.timeouts.request`, ctx);
    const backend = validateDuration(rule.timeouts.backendRequest, `${at}.timeouts.backendRequest`, ctx);
    // A request timeout of 0s means none.
    if (request !== undefined && backend !== undefined && request !== 0 && backend > request) {
      ctx.error(`${at}.timeouts.backendRequest`, `must not be longer than the request timeout (${rule.timeouts.request})`);
    }
  }
  if (rule.retry) validateDuration(rule.retry.backoff, `${at}.retry.backoff`, ctx);
  validateDuration(rule.sessionPersistence?.absoluteTimeout, `${at}.sessionPersistence.absoluteTimeout`, ctx);
  validateDuration(rule.sessionPersistence?.idleTimeout, `${at}.sessionPersistence.idleTimeout`, ctx);
}

export const httpRouteKind = defineKind<HTTPRouteSpec>({
  kind: 'HTTPRoute',
  group: GATEWAY_GROUP,
  versions: ['v1', 'v1beta1'],
  plural: 'httproutes',
  singular: 'httproute',
  shortNames: ['hr'],
  namespaced: true,
  description: 'Gateway API HTTPRoute, mesh (GAMMA) flavour: how HTTP requests to a parent Service are matched, filtered and split among backend Services.',
  specSchema: HTTPRouteSpec,
  applyDefaults(r) {
    defaultParentRefs(r);
    // Go clients drop empty lists, so upstream reads [] as absent: same defaults here.
    if (r.spec.rules.length === 0) r.spec.rules.push({ matches: [structuredClone(DEFAULT_MATCH) as HTTPRouteMatch] });
    for (const rule of r.spec.rules) {
      if (rule.matches.length === 0) rule.matches.push(structuredClone(DEFAULT_MATCH) as HTTPRouteMatch);
      for (const b of rule.backendRefs ?? []) {
        defaultBackendNamespace(b, r);
        for (const f of b.filters ?? []) if (f.requestMirror) defaultBackendNamespace(f.requestMirror.backendRef, r);
      }
      for (const f of rule.filters ?? []) if (f.requestMirror) defaultBackendNamespace(f.requestMirror.backendRef, r);
    }
  },
  validate(r, ctx) {
    validateParentRefs(r, ctx);
    validateRuleNames(r.spec.rules, ctx);
    r.spec.rules.forEach((rule, i) => validateRule(rule, `spec.rules[${i}]`, ctx));
    const total = r.spec.rules.reduce((n, rule) => n + rule.matches.length, 0);
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
