/** /config_dump in Envoy's admin.v3.ConfigDump shape (JSON), from the snapshot in force. */
import type { Entry, Snapshot } from '../config/state.js';
import { LISTENER, ROUTE_CONFIGURATION, CLUSTER, CLUSTER_LOAD_ASSIGNMENT } from '../../xds/type-urls.js';
import type { ProtoJson } from '../config/types.js';

const ADMIN = 'type.googleapis.com/envoy.admin.v3.';

function withType(url: string, raw: ProtoJson): ProtoJson {
  return { '@type': url, ...raw };
}

function split<T>(m: ReadonlyMap<string, Entry<T>>): { statics: Entry<T>[]; dynamics: Entry<T>[] } {
  const all = [...m.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  return { statics: all.filter((e) => e.isStatic), dynamics: all.filter((e) => !e.isStatic) };
}

export function configDump(snap: Snapshot, bootstrap: ProtoJson): ProtoJson {
  const l = split(snap.tables.listener);
  const c = split(snap.tables.cluster);
  const r = split(snap.tables.route);
  const e = split(snap.tables.endpoint);
  return {
    configs: [
      { '@type': `${ADMIN}BootstrapConfigDump`, bootstrap },
      {
        '@type': `${ADMIN}ClustersConfigDump`,
        version_info: snap.versions.cluster,
        static_clusters: c.statics.map((x) => ({ cluster: withType(CLUSTER, x.raw), last_updated: x.lastUpdated })),
        dynamic_active_clusters: c.dynamics.map((x) => ({ version_info: x.version, cluster: withType(CLUSTER, x.raw), last_updated: x.lastUpdated })),
      },
      {
        '@type': `${ADMIN}ListenersConfigDump`,
        version_info: snap.versions.listener,
        static_listeners: l.statics.map((x) => ({ listener: withType(LISTENER, x.raw), last_updated: x.lastUpdated })),
        dynamic_listeners: l.dynamics.map((x) => ({ name: x.name, active_state: { version_info: x.version, listener: withType(LISTENER, x.raw), last_updated: x.lastUpdated } })),
      },
      {
        '@type': `${ADMIN}RoutesConfigDump`,
        static_route_configs: r.statics.map((x) => ({ route_config: withType(ROUTE_CONFIGURATION, x.raw), last_updated: x.lastUpdated })),
        dynamic_route_configs: r.dynamics.map((x) => ({ version_info: x.version, route_config: withType(ROUTE_CONFIGURATION, x.raw), last_updated: x.lastUpdated })),
      },
      {
        '@type': `${ADMIN}EndpointsConfigDump`,
        static_endpoint_configs: e.statics.map((x) => ({ endpoint_config: withType(CLUSTER_LOAD_ASSIGNMENT, x.raw), last_updated: x.lastUpdated })),
        dynamic_endpoint_configs: e.dynamics.map((x) => ({ version_info: x.version, endpoint_config: withType(CLUSTER_LOAD_ASSIGNMENT, x.raw), last_updated: x.lastUpdated })),
      },
    ],
  };
}
