/**
 * Static stability made visible: whether the proxy holds a control-plane stream,
 * how old its config is, and when its certificate expires. Served as JSON at the
 * admin `/status` endpoint and as gauges appended to `/metrics`.
 */
import type { CertsView } from '../identity/identity-manager.js';
import type { AdsStatus } from '../xds-client/ads-client.js';

export interface ProxyStatus {
  /** null: no control plane configured (static bootstrap). */
  xds: { connected: boolean; address: string; since: string | null; lastUpdate: string | null; versions: Record<string, string> } | null;
  /** null: no workload identity. */
  identity: { spiffeId: string | null; notAfter: string | null } | null;
  /** true: config came from a control plane that is not reachable now; the proxy serves what it last accepted. */
  servingLastGoodConfig: boolean;
}

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

export function proxyStatus(ads: AdsStatus | undefined, certs: CertsView | undefined): ProxyStatus {
  return {
    xds: ads === undefined ? null : { connected: ads.connected, address: ads.address, since: iso(ads.since), lastUpdate: iso(ads.lastUpdate), versions: ads.versions },
    identity: certs === undefined ? null : { spiffeId: certs.spiffeId ?? null, notAfter: certs.certificate?.notAfter ?? null },
    servingLastGoodConfig: ads !== undefined && !ads.connected && ads.lastUpdate !== undefined,
  };
}

/** Prometheus text for the status gauges (appended to /metrics). */
export function renderStatusMetrics(st: ProxyStatus): string {
  const out: string[] = [];
  if (st.xds !== null) {
    out.push('# HELP weft_proxy_xds_connected 1 when the proxy holds an answered ADS stream to a control plane, else 0.', '# TYPE weft_proxy_xds_connected gauge', `weft_proxy_xds_connected ${st.xds.connected ? 1 : 0}`);
    if (st.xds.lastUpdate !== null) {
      out.push('# HELP weft_proxy_xds_last_update_timestamp_seconds When the proxy last accepted an xDS response (Unix seconds).', '# TYPE weft_proxy_xds_last_update_timestamp_seconds gauge', `weft_proxy_xds_last_update_timestamp_seconds ${Date.parse(st.xds.lastUpdate) / 1000}`);
    }
  }
  if (st.identity?.notAfter != null) {
    out.push('# HELP weft_proxy_certificate_expiry_timestamp_seconds notAfter of the workload certificate in force (Unix seconds).', '# TYPE weft_proxy_certificate_expiry_timestamp_seconds gauge', `weft_proxy_certificate_expiry_timestamp_seconds ${Date.parse(st.identity.notAfter) / 1000}`);
  }
  return out.length === 0 ? '' : out.join('\n') + '\n';
}
