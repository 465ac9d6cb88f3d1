import { Type, type Static } from '@sinclair/typebox';
import { defineKind, type ValidationContext } from '../descriptor.js';
import { Enum, HeaderName, ObjectName, PortNumber, WEFT_GROUP } from '../gateway/common.js';
import { MTLS_MODES } from '../mesh/mesh.js';
import { targetReferences } from '../backendpolicy/backendpolicy.js';

/*
 * Who may call a Service (or every Service of a namespace), and how callers prove
 * it: peer mTLS mode, authorization rules, JWT providers. With no targetRefs the
 * policy covers the namespace it lives in.
 */

export const AUTHZ_ACTIONS = ['ALLOW', 'DENY', 'AUDIT'] as const;

const NonEmpty = Type.String({ minLength: 1, maxLength: 1024 });
const List = Type.Array(NonEmpty, { minItems: 1 });

export const SecurityTargetRef = Type.Object(
  {
    group: Type.Optional(Type.String({ maxLength: 253 })),
    kind: Enum(['Service', 'Namespace']),
    name: ObjectName,
  },
  { additionalProperties: false },
);
export type SecurityTargetRef = Static<typeof SecurityTargetRef>;

export const AuthzSource = Type.Object(
  {
    /** SPIFFE IDs: `spiffe://cluster.local/ns/shop/sa/web`; `*` at the start or end only. */
    principals: Type.Optional(List),
    notPrincipals: Type.Optional(List),
    namespaces: Type.Optional(List),
    notNamespaces: Type.Optional(List),
    /** `sa` (in the policy's namespace) or `namespace/sa`. */
    serviceAccounts: Type.Optional(List),
    /** Calling Services: `name` (in the policy's namespace) or `namespace/name`. */
    services: Type.Optional(List),
  },
  { additionalProperties: false },
);
export type AuthzSource = Static<typeof AuthzSource>;

export const AuthzOperation = Type.Object(
  {
    methods: Type.Optional(Type.Array(Type.String({ pattern: '^([A-Z]+|\\*)$' }), { minItems: 1 })),
    notMethods: Type.Optional(Type.Array(Type.String({ pattern: '^([A-Z]+|\\*)$' }), { minItems: 1 })),
    /** Exact paths, or with `*` as prefix or suffix (`/api/*`, `*.js`). gRPC: `/pkg.Service/Method`. */
    paths: Type.Optional(List),
    notPaths: Type.Optional(List),
    ports: Type.Optional(Type.Array(PortNumber, { minItems: 1 })),
    headers: Type.Optional(Type.Array(Type.Object({ name: HeaderName, values: List }, { additionalProperties: false }), { minItems: 1 })),
  },
  { additionalProperties: false },
);
export type AuthzOperation = Static<typeof AuthzOperation>;

export const AuthzCondition = Type.Object(
  {
    /** `request.headers[x-env]`, `request.auth.claims[iss]`, `request.auth.principal`, `source.ip`, `destination.port`, ... */
    key: Type.String({ minLength: 1, maxLength: 256 }),
    values: Type.Optional(List),
    notValues: Type.Optional(List),
  },
  { additionalProperties: false },
);
export type AuthzCondition = Static<typeof AuthzCondition>;

export const AuthzRule = Type.Object(
  {
    /** Any entry may match (OR); fields within an entry must all match (AND). Empty: any source. */
    from: Type.Optional(Type.Array(AuthzSource)),
    to: Type.Optional(Type.Array(AuthzOperation)),
    when: Type.Optional(Type.Array(AuthzCondition)),
  },
  { additionalProperties: false },
);
export type AuthzRule = Static<typeof AuthzRule>;

export const Authorization = Type.Object(
  {
    action: Enum(AUTHZ_ACTIONS, { default: 'ALLOW' }),
    /** A request matching any rule gets the action. ALLOW with no rules allows nothing. */
    rules: Type.Array(AuthzRule, { default: [] }),
  },
  { additionalProperties: false },
);
export type Authorization = Static<typeof Authorization>;

export const JwtProvider = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 253, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' }),
    issuer: NonEmpty,
    /** The token's `aud` must contain one of these; empty: any. */
    audiences: Type.Optional(Type.Array(NonEmpty)),
    /** Exactly one: a JWKS document as a JSON string, or the URL it is fetched from. */
    jwks: Type.Object({ inline: Type.Optional(Type.String({ minLength: 2, maxLength: 65536 })), uri: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })) }, { additionalProperties: false }),
    /** Where the token is read from; default `Authorization: Bearer <token>`. */
    fromHeaders: Type.Optional(Type.Array(Type.Object({ name: HeaderName, prefix: Type.Optional(Type.String({ maxLength: 64 })) }, { additionalProperties: false }), { minItems: 1 })),
    fromParams: Type.Optional(Type.Array(NonEmpty, { minItems: 1 })),
    forwardOriginalToken: Type.Boolean({ default: false }),
  },
  { additionalProperties: false },
);
export type JwtProvider = Static<typeof JwtProvider>;

export const Jwt = Type.Object(
  {
    providers: Type.Array(JwtProvider, { minItems: 1, maxItems: 16 }),
    /** true: a request without a valid token is refused (401). false: a token, when present, must be valid. */
    required: Type.Boolean({ default: false }),
  },
  { additionalProperties: false },
);
export type Jwt = Static<typeof Jwt>;

export const SecurityPolicySpec = Type.Object(
  {
    targetRefs: Type.Optional(Type.Array(SecurityTargetRef, { maxItems: 16 })),
    mtls: Type.Optional(Type.Object({ mode: Enum(MTLS_MODES) }, { additionalProperties: false })),
    authorization: Type.Optional(Authorization),
    jwt: Type.Optional(Jwt),
  },
  { additionalProperties: false },
);
export type SecurityPolicySpec = Static<typeof SecurityPolicySpec>;

const SPIFFE = /^spiffe:\/\/[a-z0-9._-]+(\/[^/]+)*$/;

/** A value with an optional `*` as its whole, its first or its last character. */
export function checkWildcard(value: string): string | undefined {
  if (value === '*') return undefined;
  const inner = value.slice(1, -1);
  if (inner.includes('*')) return 'may hold "*" only at the start or the end';
  if (value.startsWith('*') && value.endsWith('*')) return 'may hold "*" at the start or the end, not both';
  return undefined;
}

export function checkPrincipal(p: string): string | undefined {
  const w = checkWildcard(p);
  if (w !== undefined) return w;
  if (p === '*' || p.startsWith('*')) return undefined;
  if (!p.startsWith('spiffe://')) return 'must be a SPIFFE ID (spiffe://<trust domain>/ns/<ns>/sa/<sa>) or use "*"';
  const body = p.endsWith('*') ? p.slice(0, -1) : p;
  if (!p.endsWith('*') && !SPIFFE.test(body)) return 'is not a valid SPIFFE ID';
  return undefined;
}

const CONDITION_KEY = /^(request\.headers\[[^\]]+\]|request\.auth\.claims(\[[^\]]+\])+|request\.auth\.(principal|audiences|presenter)|source\.(ip|namespace|principal)|destination\.(ip|port))$/;

function qualifiedNames(list: readonly string[] | undefined, at: string, what: string, ctx: ValidationContext): void {
  list?.forEach((v, i) => {
    const parts = v.split('/');
    const ok = parts.length <= 2 && parts.every((p) => /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(p));
    if (!ok) ctx.error(`${at}[${i}]`, `"${v}" is not a ${what} (name or namespace/name)`);
  });
}

function validateAuthorization(a: Authorization, ctx: ValidationContext): void {
  a.rules.forEach((rule, i) => {
    const at = `spec.authorization.rules[${i}]`;
    rule.from?.forEach((f, j) => {
      const here = `${at}.from[${j}]`;
      if (Object.keys(f).length === 0) ctx.error(here, 'is empty; leave out `from` to match any source');
      for (const field of ['principals', 'notPrincipals'] as const) {
        f[field]?.forEach((p, k) => {
          const msg = checkPrincipal(p);
          if (msg !== undefined) ctx.error(`${here}.${field}[${k}]`, msg);
        });
      }
      for (const field of ['namespaces', 'notNamespaces'] as const) {
        f[field]?.forEach((n, k) => {
          const msg = checkWildcard(n);
          if (msg !== undefined) ctx.error(`${here}.${field}[${k}]`, msg);
        });
      }
      qualifiedNames(f.serviceAccounts, `${here}.serviceAccounts`, 'service account', ctx);
      qualifiedNames(f.services, `${here}.services`, 'service', ctx);
    });
    rule.to?.forEach((t, j) => {
      const here = `${at}.to[${j}]`;
      if (Object.keys(t).length === 0) ctx.error(here, 'is empty; leave out `to` to match any operation');
      for (const field of ['paths', 'notPaths'] as const) {
        t[field]?.forEach((p, k) => {
          const msg = checkWildcard(p) ?? (p.startsWith('/') || p.startsWith('*') ? undefined : 'must start with "/" (or "*")');
          if (msg !== undefined) ctx.error(`${here}.${field}[${k}]`, msg);
        });
      }
      t.headers?.forEach((h, k) => h.values.forEach((v, m) => {
        const msg = checkWildcard(v);
        if (msg !== undefined) ctx.error(`${here}.headers[${k}].values[${m}]`, msg);
      }));
    });
    rule.when?.forEach((c, j) => {
      const here = `${at}.when[${j}]`;
      if (!CONDITION_KEY.test(c.key)) ctx.error(`${here}.key`, `"${c.key}" is not a known key (request.headers[h], request.auth.claims[c], request.auth.principal|audiences|presenter, source.ip|namespace|principal, destination.ip|port)`);
      if (c.values === undefined && c.notValues === undefined) ctx.error(here, 'give values, notValues or both');
    });
  });
}

function validateJwt(j: Jwt, ctx: ValidationContext): void {
  const names = new Set<string>();
  j.providers.forEach((p, i) => {
    const at = `spec.jwt.providers[${i}]`;
    if (names.has(p.name)) ctx.error(`${at}.name`, `provider "${p.name}" is listed twice`);
    names.add(p.name);
    const { inline, uri } = p.jwks;
    if ((inline === undefined) === (uri === undefined)) ctx.error(`${at}.jwks`, 'give exactly one of inline or uri');
    if (inline !== undefined) {
      let doc: unknown;
      try {
        doc = JSON.parse(inline);
      } catch (e) {
        ctx.error(`${at}.jwks.inline`, `is not JSON: ${(e as Error).message}`);
      }
      if (doc !== undefined) {
        const keys = (doc as { keys?: unknown }).keys;
        if (!Array.isArray(keys) || keys.length === 0) ctx.error(`${at}.jwks.inline`, 'must be a JWKS: an object with a non-empty "keys" array');
        else keys.forEach((k: unknown, n) => {
          if (typeof k !== 'object' || k === null || typeof (k as { kty?: unknown }).kty !== 'string') ctx.error(`${at}.jwks.inline`, `keys[${n}] has no "kty"`);
        });
      }
    }
    if (uri !== undefined) {
      let url: URL | undefined;
      try {
        url = new URL(uri);
      } catch {
        url = undefined;
      }
      if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) ctx.error(`${at}.jwks.uri`, `"${uri}" is not an http(s) URL`);
    }
  });
}

export const securityPolicyKind = defineKind<SecurityPolicySpec>({
  kind: 'SecurityPolicy',
  group: 'weft.dev',
  versions: ['v1alpha1'],
  plural: 'securitypolicies',
  singular: 'securitypolicy',
  shortNames: ['sp'],
  namespaced: true,
  description: 'Who may call a Service or the Services of a namespace: mTLS mode override, authorization rules (ALLOW/DENY/AUDIT) and JWT providers.',
  specSchema: SecurityPolicySpec,
  validate(r, ctx) {
    const s = r.spec;
    if (s.mtls === undefined && s.authorization === undefined && s.jwt === undefined) ctx.error('spec', 'sets nothing: give at least one of mtls, authorization, jwt');
    s.targetRefs?.forEach((t, i) => {
      const at = `spec.targetRefs[${i}]`;
      if (t.kind === 'Service' && t.group !== undefined && t.group !== '' && t.group !== WEFT_GROUP) ctx.error(`${at}.group`, `must be "" or ${WEFT_GROUP} for a Service`);
      if (t.kind === 'Namespace') {
        if (t.group !== undefined && t.group !== '') ctx.error(`${at}.group`, 'must be "" for a Namespace');
        if (t.name !== r.metadata.namespace) ctx.error(`${at}.name`, `a policy may target only its own namespace ("${r.metadata.namespace ?? ''}")`);
      }
    });
    if (s.authorization) validateAuthorization(s.authorization, ctx);
    if (s.jwt) validateJwt(s.jwt, ctx);
  },
  references(r) {
    return targetReferences(r.spec.targetRefs ?? [], r.metadata.namespace ?? '', ['Service']);
  },
  columns: [
    { header: 'TARGETS', value: (r) => (r.spec.targetRefs ?? []).map((t) => `${t.kind}/${t.name}`).join(',') || `Namespace/${r.metadata.namespace ?? ''}` },
    { header: 'MTLS', value: (r) => r.spec.mtls?.mode ?? '-' },
    { header: 'ACTION', value: (r) => (r.spec.authorization ? `${r.spec.authorization.action}(${r.spec.authorization.rules.length})` : '-') },
    { header: 'JWT', value: (r) => (r.spec.jwt ? r.spec.jwt.providers.map((p) => p.name).join(',') : '-') },
  ],
});
