/**
 * Pieces of the Kubernetes Gateway API (sigs.k8s.io/gateway-api `apis/v1`,
 * shared_types.go, object_reference_types.go, httproute_types.go) that HTTPRoute,
 * GRPCRoute and TCPRoute share. Field names, enums, limits and defaults follow the
 * upstream CRDs so that a GAMMA (mesh) route written for Istio or Linkerd applies
 * unchanged; the upstream CEL rules become checks in `validate*` below.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { Reference, ValidationContext } from '../descriptor.js';
import type { Resource } from '../types.js';
import { DURATION_PATTERN, parseDuration } from '../../lib/duration.js';

export const GATEWAY_GROUP = 'gateway.networking.k8s.io';
export const WEFT_GROUP = 'weft.dev';

const DNS_SUBDOMAIN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';

export const Group = Type.String({ maxLength: 253, pattern: '^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$', description: 'API group; "" is the Kubernetes core group' });
export const Kind = Type.String({ minLength: 1, maxLength: 63, pattern: '^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$' });
export const ObjectName = Type.String({ minLength: 1, maxLength: 253 });
export const Namespace = Type.String({ minLength: 1, maxLength: 63, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' });
export const SectionName = Type.String({ minLength: 1, maxLength: 253, pattern: DNS_SUBDOMAIN });
export const PortNumber = Type.Integer({ minimum: 1, maximum: 65535 });
/** May start with a `*.` wildcard label. */
export const Hostname = Type.String({ minLength: 1, maxLength: 253, pattern: '^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$' });
export const PreciseHostname = Type.String({ minLength: 1, maxLength: 253, pattern: DNS_SUBDOMAIN });
/** RFC 7230 token. */
export const HEADER_NAME_PATTERN = "^[A-Za-z0-9!#$%&'*+\\-.^_`|~]+$";
export const HeaderName = Type.String({ minLength: 1, maxLength: 256, pattern: HEADER_NAME_PATTERN });
/** GEP-2257 duration: `1h`, `500ms`, `1m30s`. */
export const Duration = Type.String({ pattern: DURATION_PATTERN, description: 'Duration such as 10s, 500ms or 1m30s (GEP-2257)' });

/**
 * A fixed set of strings, published as JSON Schema `enum` (clearer errors than a
 * union of literals: "must be one of ...").
 */
export function Enum<const T extends string>(values: readonly T[], opts: { default?: T; description?: string } = {}) {
  return Type.Unsafe<T>({ type: 'string', enum: [...values], ...opts });
}

export const ParentReference = Type.Object(
  {
    group: Type.Optional(Group),
    kind: Type.Optional(Kind),
    namespace: Type.Optional(Namespace),
    name: ObjectName,
    sectionName: Type.Optional(SectionName),
    port: Type.Optional(PortNumber),
  },
  { additionalProperties: false, description: 'In a mesh (GAMMA) the parent is a Service: kind Service, group "" (core) or weft.dev' },
);
export type ParentReference = Static<typeof ParentReference>;

const backendObjectReferenceFields = {
  group: Type.String({ ...Group, default: '' }),
  kind: Type.String({ ...Kind, default: 'Service' }),
  name: ObjectName,
  /** Filled with the route's namespace by applyDefaults. */
  namespace: Type.Optional(Namespace),
  port: Type.Optional(PortNumber),
};

export const BackendObjectReference = Type.Object(backendObjectReferenceFields, { additionalProperties: false });
export type BackendObjectReference = Static<typeof BackendObjectReference>;

export const Weight = Type.Integer({ minimum: 0, maximum: 1_000_000, default: 1 });

export const BackendRef = Type.Object({ ...backendObjectReferenceFields, weight: Weight }, { additionalProperties: false });
export type BackendRef = Static<typeof BackendRef>;

export const LocalObjectReference = Type.Object({ group: Group, kind: Kind, name: ObjectName }, { additionalProperties: false });
export type LocalObjectReference = Static<typeof LocalObjectReference>;

export const HTTPHeader = Type.Object(
  { name: HeaderName, value: Type.String({ minLength: 1, maxLength: 4096 }) },
  { additionalProperties: false },
);

export const HTTPHeaderFilter = Type.Object(
  {
    set: Type.Optional(Type.Array(HTTPHeader, { maxItems: 16 })),
    add: Type.Optional(Type.Array(HTTPHeader, { maxItems: 16 })),
    remove: Type.Optional(Type.Array(HeaderName, { maxItems: 16 })),
  },
  { additionalProperties: false },
);
export type HTTPHeaderFilter = Static<typeof HTTPHeaderFilter>;

export const Fraction = Type.Object(
  { numerator: Type.Integer({ minimum: 0 }), denominator: Type.Integer({ minimum: 1, default: 100 }) },
  { additionalProperties: false },
);

export const HTTPRequestMirrorFilter = Type.Object(
  {
    backendRef: BackendObjectReference,
    percent: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
    fraction: Type.Optional(Fraction),
  },
  { additionalProperties: false },
);
export type HTTPRequestMirrorFilter = Static<typeof HTTPRequestMirrorFilter>;

/** Accepted so that upstream YAML applies; Weft does not act on it yet. */
export const SessionPersistence = Type.Object(
  {
    sessionName: Type.Optional(Type.String({ maxLength: 128 })),
    absoluteTimeout: Type.Optional(Duration),
    idleTimeout: Type.Optional(Duration),
    type: Type.Optional(Enum(['Cookie', 'Header'])),
    cookieConfig: Type.Optional(Type.Object({ lifetimeType: Type.Optional(Enum(['Permanent', 'Session'])) }, { additionalProperties: false })),
    cookie: Type.Optional(Type.Object({ name: Type.Optional(HeaderName), path: Type.Optional(Type.String({ maxLength: 1024 })), lifetimeType: Type.Optional(Enum(['Permanent', 'Session'])) }, { additionalProperties: false })),
    header: Type.Optional(Type.Object({ name: HeaderName }, { additionalProperties: false })),
  },
  { additionalProperties: false },
);

export const ParentRefs = Type.Array(ParentReference, { maxItems: 32 });
export const Hostnames = Type.Array(Hostname, { maxItems: 16 });

// ---------------------------------------------------------------------------
// Semantic checks shared by the route kinds.

/**
 * A core or Weft Service: the only kind a mesh route can attach to or send to.
 * `group: core` is not the Kubernetes spelling ("" is), but Linkerd's GAMMA
 * documentation writes it and Linkerd accepts it, so those routes apply unchanged.
 */
export function isServiceRef(ref: { group?: string; kind?: string }): boolean {
  return ref.kind === 'Service' && (ref.group === undefined || ref.group === '' || ref.group === 'core' || ref.group === WEFT_GROUP);
}

type RouteLike = Resource<{ parentRefs?: ParentReference[] }>;

/**
 * Fills what the Gateway API leaves implicit but Weft's translators want spelt out:
 * a Service parent's group, a backend's namespace.
 */
export function defaultParentRefs(r: RouteLike): void {
  for (const p of r.spec.parentRefs ?? []) {
    // Upstream would default the group to gateway.networking.k8s.io, which has no
    // Service: a Service parent without a group can only mean the core one.
    if (p.kind === 'Service' && p.group === undefined) p.group = '';
  }
}

export function defaultBackendNamespace(ref: { namespace?: string }, r: Resource): void {
  ref.namespace ??= r.metadata.namespace;
}

export function validateParentRefs(r: RouteLike, ctx: ValidationContext): void {
  const refs = r.spec.parentRefs ?? [];
  if (refs.length === 0) {
    ctx.error('spec.parentRefs', 'a mesh route must name at least one parent Service (kind: Service, group: "")');
    return;
  }
  const seen = new Map<string, number>();
  refs.forEach((p, i) => {
    const at = `spec.parentRefs[${i}]`;
    if (p.kind === undefined) {
      ctx.error(`${at}.kind`, 'defaults to Gateway, which Weft does not implement: a mesh route attaches to a Service (kind: Service, group: "")');
      return;
    }
    if (!isServiceRef(p)) {
      ctx.error(at, `${p.group ?? GATEWAY_GROUP}/${p.kind} is not supported: a mesh route attaches to a Service (kind: Service, group "" or ${WEFT_GROUP})`);
      return;
    }
    // Upstream CEL: two references to one parent must differ by sectionName or port.
    const k = `${p.namespace ?? ''}/${p.name}/${p.sectionName ?? ''}/${p.port ?? 0}`;
    const first = seen.get(k);
    if (first !== undefined) ctx.error(at, `refers to the same parent as parentRefs[${first}]; give each a different sectionName or port`);
    else seen.set(k, i);
  });
}

/** Every reference must name a Service with a port, as upstream requires for core Services. */
export function validateBackendObjectRef(ref: BackendObjectReference, at: string, ctx: ValidationContext): void {
  if (!isServiceRef(ref)) {
    ctx.error(at, `${ref.group === '' ? 'core' : ref.group}/${ref.kind} is not a backend Weft knows: use kind Service (group "" or ${WEFT_GROUP})`);
    return;
  }
  if (ref.port === undefined) ctx.error(`${at}.port`, 'is required for a Service backend');
}

export function validateBackendRefs(refs: readonly BackendRef[] | undefined, at: string, ctx: ValidationContext): void {
  (refs ?? []).forEach((b, i) => validateBackendObjectRef(b, `${at}[${i}]`, ctx));
}

/** `set` and `add` name each header once; `remove` too (upstream: listType map/set). */
export function validateHeaderFilter(f: HTTPHeaderFilter, at: string, ctx: ValidationContext): void {
  for (const list of ['set', 'add'] as const) {
    const names = new Set<string>();
    (f[list] ?? []).forEach((h, i) => {
      const n = h.name.toLowerCase();
      if (names.has(n)) ctx.error(`${at}.${list}[${i}].name`, `header "${h.name}" is listed twice`);
      names.add(n);
    });
  }
  const removed = new Set<string>();
  (f.remove ?? []).forEach((h, i) => {
    const n = h.toLowerCase();
    if (removed.has(n)) ctx.error(`${at}.remove[${i}]`, `header "${h}" is listed twice`);
    removed.add(n);
  });
  if ((f.set?.length ?? 0) + (f.add?.length ?? 0) + (f.remove?.length ?? 0) === 0) ctx.error(at, 'must set, add or remove at least one header');
}

export function validateMirror(m: HTTPRequestMirrorFilter, at: string, ctx: ValidationContext): void {
  validateBackendObjectRef(m.backendRef, `${at}.backendRef`, ctx);
  if (m.percent !== undefined && m.fraction !== undefined) ctx.error(at, 'only one of percent or fraction may be specified');
  if (m.fraction && m.fraction.numerator > m.fraction.denominator) ctx.error(`${at}.fraction.numerator`, 'must be ≤ denominator');
}

/** Header (or query parameter) matches name each header once, case-insensitively for headers. */
export function validateUniqueNames(list: readonly { name: string }[] | undefined, at: string, ctx: ValidationContext, caseInsensitive: boolean): void {
  const names = new Set<string>();
  (list ?? []).forEach((h, i) => {
    const n = caseInsensitive ? h.name.toLowerCase() : h.name;
    if (names.has(n)) ctx.error(`${at}[${i}].name`, `"${h.name}" is matched twice; a request has one value to compare`);
    names.add(n);
  });
}

/**
 * Envoy matches with RE2. JavaScript's engine is used as an approximation, after
 * rejecting what RE2 refuses (lookaround, backreferences) and translating what
 * only RE2 spells (`(?P<name>`, a leading `(?i)` flag group).
 * Returns a message when the expression is not acceptable.
 */
export function checkRe2(source: string): string | undefined {
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') {
      const n = source[i + 1] ?? '';
      if (!inClass && /[1-9]/.test(n)) return `backreference \\${n} is not supported (RE2)`;
      if (!inClass && n === 'k' && source[i + 2] === '<') return 'named backreference is not supported (RE2)';
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') {
      inClass = true;
      if (source[i + 1] === ']') i++;
      continue;
    }
    if (c === '(' && source[i + 1] === '?') {
      const rest = source.slice(i + 2, i + 4);
      if (rest.startsWith('=') || rest.startsWith('!') || rest === '<=' || rest === '<!') return 'lookaround assertions are not supported (RE2)';
    }
  }
  let body = source.replace(/\(\?P</g, '(?<');
  let flags = '';
  const lead = /^\(\?([imsU]+)\)/.exec(body);
  if (lead) {
    if (lead[1]?.includes('U')) return 'the U (ungreedy) flag is not supported';
    flags = lead[1] ?? '';
    body = body.slice(lead[0].length);
  }
  try {
    new RegExp(body, flags);
    return undefined;
  } catch (e) {
    return `invalid regular expression: ${(e as Error).message.replace(/^Invalid regular expression: /, '')}`;
  }
}

export function validateRegex(value: string, at: string, ctx: ValidationContext): void {
  const msg = checkRe2(value);
  if (msg !== undefined) ctx.error(at, msg);
}

export function validateDuration(value: string | undefined, at: string, ctx: ValidationContext): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  if (ms === undefined) ctx.error(at, `"${value}" is not a duration (e.g. 10s, 500ms, 1m30s)`);
  return ms;
}

/** The Services a route names: Service parents and every backend (and mirror) reference. */
export function serviceReference(ref: { group?: string; kind?: string; namespace?: string; name: string }, r: Resource, path: string): Reference[] {
  if (!isServiceRef(ref)) return [];
  return [{ path, target: { kind: 'Service', namespace: ref.namespace ?? r.metadata.namespace ?? '', name: ref.name } }];
}

export function parentReferences(r: RouteLike): Reference[] {
  return (r.spec.parentRefs ?? []).flatMap((p, i) => serviceReference(p, r, `spec.parentRefs[${i}]`));
}

// ---------------------------------------------------------------------------
// Columns.

export function parentsColumn(r: RouteLike): string {
  const refs = r.spec.parentRefs ?? [];
  if (refs.length === 0) return '<none>';
  return refs
    .map((p) => {
      const ns = p.namespace !== undefined && p.namespace !== r.metadata.namespace ? `${p.namespace}/` : '';
      const port = p.port !== undefined ? `:${p.port}` : p.sectionName !== undefined ? `:${p.sectionName}` : '';
      return `${ns}${p.name}${port}`;
    })
    .join(',');
}

export function hostnamesColumn(r: Resource<{ hostnames?: string[] }>): string {
  const h = r.spec.hostnames ?? [];
  return h.length === 0 ? '*' : h.join(',');
}

/** `catalog-v1:80(80),catalog-v2:80(20)` */
export function backendsColumn(refs: readonly BackendRef[]): string {
  if (refs.length === 0) return '<none>';
  return refs.map((b) => `${b.name}${b.port !== undefined ? `:${b.port}` : ''}${refs.length > 1 ? `(${b.weight})` : ''}`).join(',');
}

/** The `type` of a route filter and the field that carries its configuration. */
export const FILTER_FIELDS = {
  RequestHeaderModifier: 'requestHeaderModifier',
  ResponseHeaderModifier: 'responseHeaderModifier',
  RequestMirror: 'requestMirror',
  RequestRedirect: 'requestRedirect',
  URLRewrite: 'urlRewrite',
  CORS: 'cors',
  ExtensionRef: 'extensionRef',
} as const;
export type FilterType = keyof typeof FILTER_FIELDS;

/** Filters that may appear at most once in a list (upstream CEL). */
const UNREPEATABLE: ReadonlySet<string> = new Set(['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestRedirect', 'URLRewrite', 'CORS']);

type AnyFilter = { type: string } & Partial<Record<(typeof FILTER_FIELDS)[FilterType], unknown>>;

/**
 * Upstream's union rules: the field named by `type` is set and no other is; the
 * unrepeatable filters appear once; redirect and rewrite exclude each other.
 * Returns the filters whose shape is right, for the caller's further checks.
 */
export function validateFilterList<F extends AnyFilter>(filters: readonly F[] | undefined, at: string, ctx: ValidationContext): F[] {
  const ok: F[] = [];
  const count = new Map<string, number>();
  (filters ?? []).forEach((f, i) => {
    const here = `${at}[${i}]`;
    let good = true;
    for (const [type, field] of Object.entries(FILTER_FIELDS)) {
      const has = f[field] !== undefined;
      if (type === f.type && !has) {
        ctx.error(`${here}.${field}`, `is required when type is ${type}`);
        good = false;
      } else if (type !== f.type && has) {
        ctx.error(`${here}.${field}`, `must not be set when type is ${f.type}`);
        good = false;
      }
    }
    const n = (count.get(f.type) ?? 0) + 1;
    count.set(f.type, n);
    if (n === 2 && UNREPEATABLE.has(f.type)) ctx.error(`${here}.type`, `${f.type} filter cannot be repeated`);
    if (f.type === 'ExtensionRef') {
      ctx.error(here, 'ExtensionRef filters are not supported: Weft has no extension filters');
      good = false;
    }
    if (good) ok.push(f);
  });
  if ((count.get('RequestRedirect') ?? 0) > 0 && (count.get('URLRewrite') ?? 0) > 0) ctx.error(at, 'may specify either RequestRedirect or URLRewrite, but not both');
  return ok;
}

/** Header modifiers and mirrors, common to HTTP and gRPC filters. */
export function validateCommonFilter(f: AnyFilter & { requestHeaderModifier?: HTTPHeaderFilter; responseHeaderModifier?: HTTPHeaderFilter; requestMirror?: HTTPRequestMirrorFilter }, at: string, ctx: ValidationContext): void {
  if (f.requestHeaderModifier) validateHeaderFilter(f.requestHeaderModifier, `${at}.requestHeaderModifier`, ctx);
  if (f.responseHeaderModifier) validateHeaderFilter(f.responseHeaderModifier, `${at}.responseHeaderModifier`, ctx);
  if (f.requestMirror) validateMirror(f.requestMirror, `${at}.requestMirror`, ctx);
}

/** Rule names (`sectionName` targets for policies) are unique within a route. */
export function validateRuleNames(rules: readonly { name?: string }[], ctx: ValidationContext): void {
  const names = new Map<string, number>();
  rules.forEach((rule, i) => {
    if (rule.name === undefined) return;
    const first = names.get(rule.name);
    if (first !== undefined) ctx.error(`spec.rules[${i}].name`, `"${rule.name}" is already the name of rules[${first}]`);
    else names.set(rule.name, i);
  });
}

export function mirrorReferences(filters: readonly { requestMirror?: HTTPRequestMirrorFilter }[] | undefined, r: Resource, at: string): Reference[] {
  return (filters ?? []).flatMap((f, i) => (f.requestMirror ? serviceReference(f.requestMirror.backendRef, r, `${at}[${i}].requestMirror.backendRef`) : []));
}
