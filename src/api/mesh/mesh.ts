import { Type, type Static } from '@sinclair/typebox';
import { defineKind } from '../descriptor.js';
import { Duration, Enum, validateDuration } from '../gateway/common.js';

export const MTLS_MODES = ['STRICT', 'PERMISSIVE', 'DISABLE'] as const;
export type MtlsMode = (typeof MTLS_MODES)[number];
export const OUTBOUND_POLICIES = ['ALLOW_ANY', 'REGISTRY_ONLY'] as const;

/** The name the control plane reads; other Mesh objects are stored but unused. */
export const DEFAULT_MESH_NAME = 'default';

const MIN_TTL_MS = 60_000;
const MAX_TTL_MS = 90 * 24 * 3_600_000;

export const MeshSpec = Type.Object(
  {
    /** SPIFFE trust domain: identities read `spiffe://<trustDomain>/ns/<ns>/sa/<sa>`. */
    trustDomain: Type.String({ minLength: 1, maxLength: 255, pattern: '^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$', default: 'cluster.local' }),
    mtls: Type.Object({ mode: Enum(MTLS_MODES, { default: 'PERMISSIVE' }) }, { additionalProperties: false, default: {} }),
    certificates: Type.Object(
      { workloadTTL: Type.String({ ...Duration, default: '24h', description: 'Lifetime of workload certificates, 1m to 90d (2160h)' }) },
      { additionalProperties: false, default: {} },
    ),
    tracing: Type.Object(
      {
        /** Percent of requests that start a trace (0-100, fractions allowed). */
        sampling: Type.Number({ minimum: 0, maximum: 100, default: 1 }),
        /** OTLP/HTTP endpoint; without one spans are not exported. */
        collector: Type.Optional(Type.Object({ endpoint: Type.String({ minLength: 1, maxLength: 2048 }) }, { additionalProperties: false })),
      },
      { additionalProperties: false, default: {} },
    ),
    accessLog: Type.Object(
      {
        format: Enum(['json', 'text'], { default: 'json' }),
        /** `stdout`, `stderr`, `off`, or a file path on the proxy's host. */
        path: Type.String({ minLength: 1, maxLength: 4096, default: 'stdout' }),
      },
      { additionalProperties: false, default: {} },
    ),
    outboundPolicy: Enum(OUTBOUND_POLICIES, { default: 'ALLOW_ANY' }),
  },
  { additionalProperties: false },
);
export type MeshSpec = Static<typeof MeshSpec>;

export const meshKind = defineKind<MeshSpec>({
  kind: 'Mesh',
  group: 'weft.dev',
  versions: ['v1alpha1'],
  plural: 'meshes',
  singular: 'mesh',
  shortNames: [],
  namespaced: false,
  description: 'Mesh-wide settings (cluster-scoped, normally one named "default"): trust domain, default mTLS mode, certificate lifetime, tracing, access logs, outbound policy.',
  specSchema: MeshSpec,
  validate(r, ctx) {
    const s = r.spec;
    if (s.trustDomain.split('.').some((l) => l === '')) ctx.error('spec.trustDomain', 'must not contain empty labels');
    const ttl = validateDuration(s.certificates.workloadTTL, 'spec.certificates.workloadTTL', ctx);
    if (ttl !== undefined && (ttl < MIN_TTL_MS || ttl > MAX_TTL_MS)) ctx.error('spec.certificates.workloadTTL', 'must be between 1m and 90d (2160h)');
    const endpoint = s.tracing.collector?.endpoint;
    if (endpoint !== undefined) {
      let url: URL | undefined;
      try {
        url = new URL(endpoint);
      } catch {
        url = undefined;
      }
      if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) ctx.error('spec.tracing.collector.endpoint', `"${endpoint}" is not an http(s) URL`);
    }
    if (s.accessLog.path.includes('\0')) ctx.error('spec.accessLog.path', 'must not contain NUL');
  },
  columns: [
    { header: 'TRUST-DOMAIN', value: (r) => r.spec.trustDomain },
    { header: 'MTLS', value: (r) => r.spec.mtls.mode },
    { header: 'OUTBOUND', value: (r) => r.spec.outboundPolicy },
    { header: 'CERT-TTL', value: (r) => r.spec.certificates.workloadTTL },
  ],
});
