import { Type, type Static } from '@sinclair/typebox';
import { defineKind } from '../descriptor.js';
import { Labels } from '../meta.js';

export const SERVICE_PROTOCOLS = ['http', 'http2', 'grpc', 'tcp'] as const;

export const ServicePort = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 63, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' })),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    targetPort: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, description: 'Port on the workload; defaults to port' })),
    protocol: Type.Union(SERVICE_PROTOCOLS.map((p) => Type.Literal(p)), { default: 'http' }),
  },
  { additionalProperties: false },
);

export const ServiceSpec = Type.Object(
  {
    selector: Type.Optional(Labels),
    ports: Type.Array(ServicePort, { minItems: 1 }),
    /** Service accounts this service runs as: clients verify the server's SPIFFE ID against them. */
    serviceAccounts: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 253 }))),
  },
  { additionalProperties: false },
);
export type ServiceSpec = Static<typeof ServiceSpec>;

export const serviceKind = defineKind<ServiceSpec>({
  kind: 'Service',
  group: 'weft.dev',
  versions: ['v1alpha1'],
  plural: 'services',
  singular: 'service',
  shortNames: ['svc'],
  namespaced: true,
  description: 'A named set of workloads (chosen by label selector) and the ports they serve.',
  specSchema: ServiceSpec,
  applyDefaults(r) {
    for (const p of r.spec.ports) p.targetPort ??= p.port;
  },
  validate(r, ctx) {
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
    if (r.spec.ports.length > 1) {
      r.spec.ports.forEach((p, i) => {
        if (p.name === undefined) ctx.error(`spec.ports[${i}].name`, 'is required when a service has more than one port');
      });
    }
  },
  columns: [
    { header: 'PORTS', value: (r) => r.spec.ports.map((p) => `${p.port}/${p.protocol}`).join(',') },
    { header: 'SELECTOR', value: (r) => Object.entries(r.spec.selector ?? {}).map(([k, v]) => `${k}=${v}`).join(',') || '<none>' },
  ],
});
