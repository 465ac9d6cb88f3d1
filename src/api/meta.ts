import { Type } from '@sinclair/typebox';

/** RFC 1123 label (namespaces): lower-case alphanumerics and '-', at most 63. */
export const DNS_LABEL = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
/** RFC 1123 subdomain (object names): labels joined by '.', at most 253. */
export const DNS_SUBDOMAIN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';

export const ObjectName = Type.String({ minLength: 1, maxLength: 253, pattern: DNS_SUBDOMAIN, description: 'RFC 1123 subdomain' });
export const NamespaceName = Type.String({ minLength: 1, maxLength: 63, pattern: DNS_LABEL, description: 'RFC 1123 label' });

/** Label keys as Kubernetes: optional DNS prefix, '/', name of at most 63 characters. */
export const LABEL_KEY = '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$';
export const LABEL_VALUE = '^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$';

export const Labels = Type.Record(Type.String({ pattern: LABEL_KEY }), Type.String({ maxLength: 63, pattern: LABEL_VALUE }));

export const ObjectMetaSchema = Type.Object(
  {
    name: ObjectName,
    namespace: Type.Optional(NamespaceName),
    labels: Type.Optional(Labels),
    annotations: Type.Optional(Type.Record(Type.String(), Type.String())),
    resourceVersion: Type.Optional(Type.String()),
    generation: Type.Optional(Type.Integer({ minimum: 0 })),
    creationTimestamp: Type.Optional(Type.String()),
    uid: Type.Optional(Type.String()),
  },
  // Kubernetes tools add fields such as managedFields; accept and ignore them.
  { additionalProperties: true },
);

/** A label selector (`matchLabels` only, as most mesh configs use). */
export const LabelSelector = Type.Object(
  {
    matchLabels: Type.Optional(Labels),
  },
  { additionalProperties: false },
);
