/**
 * The node metadata keys a Weft proxy sends on its first ADS request, in one place.
 * The control plane reads them to register the workload (keys are the control-plane
 * engineer's to finalise; change them here only).
 */
export const NODE_METADATA = {
  service: 'WEFT_SERVICE',
  namespace: 'WEFT_NAMESPACE',
  workloadAddress: 'WEFT_WORKLOAD_ADDRESS',
  /** Comma-separated ports, e.g. "8080,9090". */
  workloadPorts: 'WEFT_WORKLOAD_PORTS',
  /** The proxy's own version. */
  proxyVersion: 'WEFT_PROXY_VERSION',
  /**
   * Port of this proxy's mTLS `inbound` listener (decimal string): where other proxies'
   * EDS endpoints for this workload should point. `--inbound-addr` sets it (port 0 is
   * resolved to a free port before connecting); otherwise the default 15006.
   */
  inboundPort: 'WEFT_INBOUND_PORT',
  /** The workload's service account: the `sa` of its certificate's SPIFFE ID (peers verify it). */
  serviceAccount: 'WEFT_SERVICE_ACCOUNT',
} as const;

/** `spiffe://td/ns/NS/sa/SA` → SA. */
export function serviceAccountOf(spiffeId: string | undefined): string | undefined {
  const m = spiffeId === undefined ? null : /\/ns\/[^/]+\/sa\/([^/]+)$/.exec(spiffeId);
  return m?.[1];
}

type StructValue =
  | { nullValue: 'NULL_VALUE' }
  | { stringValue: string }
  | { numberValue: number }
  | { boolValue: boolean }
  | { listValue: { values: StructValue[] } }
  | { structValue: { fields: Record<string, StructValue> } };

/**
 * JS value → google.protobuf.Value for proto-loader. The well-known types come from
 * protobufjs's own (camelCase) definitions, not Envoy's keepCase ones: `string_value`
 * is silently dropped, `stringValue` works.
 */
export function toValue(v: unknown): StructValue {
  if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toValue) } };
  if (typeof v === 'object') return { structValue: toStruct(v as Record<string, unknown>) };
  return { stringValue: String(v) };
}

export function toStruct(o: Record<string, unknown>): { fields: Record<string, StructValue> } {
  const fields: Record<string, StructValue> = {};
  for (const [k, v] of Object.entries(o)) fields[k] = toValue(v);
  return { fields };
}
