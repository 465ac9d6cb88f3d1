import { isIP } from 'node:net';
import { Type, type Static } from '@sinclair/typebox';
import { defineKind } from '../descriptor.js';
import { Enum } from '../gateway/common.js';
import { DNS_SUBDOMAIN, Labels } from '../meta.js';
import { SERVICE_PROTOCOLS } from '../service/service.js';

export const WORKLOAD_HEALTH = ['HEALTHY', 'UNHEALTHY', 'DRAINING', 'UNKNOWN'] as const;
export type WorkloadHealth = (typeof WORKLOAD_HEALTH)[number];

export const WorkloadPort = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 63, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' })),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    /** Unset: the protocol of the Service port that targets this port. */
    protocol: Type.Optional(Enum(SERVICE_PROTOCOLS)),
  },
  { additionalProperties: false },
);
export type WorkloadPort = Static<typeof WorkloadPort>;

const LocalityPart = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$' });

export const Locality = Type.Object(
  { region: Type.Optional(LocalityPart), zone: Type.Optional(LocalityPart), subzone: Type.Optional(LocalityPart) },
  { additionalProperties: false },
);
export type Locality = Static<typeof Locality>;

export const WorkloadSpec = Type.Object(
  {
    /**
     * The labels Service selectors match. When empty, the object's metadata.labels
     * are copied here, so a hand-written Workload may carry its labels either way.
     */
    labels: { ...Labels, default: {} } as typeof Labels,
    /** IPv4 or IPv6 literal the workload (or its proxy's inbound listener) is reached at. */
    address: Type.String({ minLength: 2, maxLength: 45 }),
    ports: Type.Array(WorkloadPort, { default: [] }),
    serviceAccount: Type.String({ minLength: 1, maxLength: 253, pattern: DNS_SUBDOMAIN, default: 'default' }),
    locality: Type.Optional(Locality),
    /** Load-balancing weight relative to the other workloads of a Service. */
    weight: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
    health: Enum(WORKLOAD_HEALTH, { default: 'HEALTHY' }),
  },
  { additionalProperties: false },
);
export type WorkloadSpec = Static<typeof WorkloadSpec>;

export const workloadKind = defineKind<WorkloadSpec>({
  kind: 'Workload',
  group: 'weft.dev',
  versions: ['v1alpha1'],
  plural: 'workloads',
  singular: 'workload',
  shortNames: ['wl'],
  namespaced: true,
  description: 'One running instance of a Service: its address, ports, identity (service account), locality and health. Normally registered by its proxy.',
  specSchema: WorkloadSpec,
  applyDefaults(r) {
    if (Object.keys(r.spec.labels).length === 0 && r.metadata.labels) r.spec.labels = { ...r.metadata.labels };
  },
  validate(r, ctx) {
    if (isIP(r.spec.address) === 0) ctx.error('spec.address', `"${r.spec.address}" is not an IPv4 or IPv6 address`);
    const ports = new Set<number>();
    const names = new Set<string>();
    r.spec.ports.forEach((p, i) => {
      if (ports.has(p.port)) ctx.error(`spec.ports[${i}].port`, `port ${p.port} is listed twice`);
      ports.add(p.port);
      if (p.name !== undefined) {
        if (names.has(p.name)) ctx.error(`spec.ports[${i}].name`, `name "${p.name}" is listed twice`);
        names.add(p.name);
      }
    });
    const l = r.spec.locality;
    if (l?.subzone !== undefined && l.zone === undefined) ctx.error('spec.locality.zone', 'is required when subzone is set');
    if (l?.zone !== undefined && l.region === undefined) ctx.error('spec.locality.region', 'is required when zone is set');
  },
  columns: [
    { header: 'ADDRESS', value: (r) => r.spec.address },
    { header: 'SERVICE-ACCOUNT', value: (r) => r.spec.serviceAccount },
    { header: 'HEALTH', value: (r) => r.spec.health },
  ],
});

/** `spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>` of a workload. */
export function spiffeIdOf(r: { metadata: { namespace?: string }; spec: Pick<WorkloadSpec, 'serviceAccount'> }, trustDomain: string): string {
  return `spiffe://${trustDomain}/ns/${r.metadata.namespace ?? 'default'}/sa/${r.spec.serviceAccount}`;
}
