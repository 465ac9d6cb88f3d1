/** Envoy-style bootstrap (JSON or YAML; a path or an object) → what startProxy needs. */
import { readFile } from 'node:fs/promises';
import { WeftError } from '../../lib/errors.js';
import { compileLoadAssignment } from './compile-endpoints.js';
import { arr, fail, isObject, obj, optObj, str } from './proto-values.js';
import type { ProtoJson } from './types.js';

export interface Bootstrap {
  readonly raw: ProtoJson;
  readonly node: { id?: string; cluster?: string; metadata: Record<string, unknown> };
  readonly staticListeners: readonly unknown[];
  readonly staticClusters: readonly unknown[];
  /** `host:port` targets of the ADS server(s), empty when there is no ads_config. */
  readonly adsAddresses: readonly string[];
  readonly adminAddr?: string;
}

/** The document when it is JSON, else undefined (YAML, flow style included, goes to the YAML parser). */
function parseJson(text: string): unknown {
  const c = text.trimStart().charCodeAt(0);
  if (c !== 123 /* { */ && c !== 91 /* [ */) return undefined;
  try { return JSON.parse(text) as unknown; } catch { return undefined; }
}

export async function loadBootstrap(src: string | ProtoJson | undefined): Promise<Bootstrap> {
  let raw: unknown = src ?? {};
  if (typeof src === 'string') {
    let text: string;
    try {
      text = await readFile(src, 'utf8');
    } catch (e) {
      throw new WeftError('WEFT_ERR_NOT_FOUND', `cannot read bootstrap ${src}: ${(e as Error).message}`, { cause: e });
    }
    try {
      // JSON needs no parser module; `yaml` (~7 MB of idle RSS) only loads for YAML files.
      raw = parseJson(text) ?? (await import('yaml')).parse(text) ?? {};
    } catch (e) {
      throw new WeftError('WEFT_ERR_PARSE', `bootstrap ${src}: ${(e as Error).message}`, { cause: e });
    }
  }
  return parseBootstrap(obj(raw, 'bootstrap'));
}

function addressOf(v: unknown, path: string): string {
  const a = obj(v, path);
  const sa = obj(a.socket_address, `${path}.socket_address`);
  const host = str(sa.address, `${path}.socket_address.address`);
  return `${host.includes(':') ? `[${host}]` : host}:${String(sa.port_value ?? 0)}`;
}

export function parseBootstrap(raw: ProtoJson): Bootstrap {
  const sr = optObj(raw.static_resources, 'static_resources') ?? {};
  const staticListeners = arr(sr.listeners, 'static_resources.listeners');
  const staticClusters = arr(sr.clusters, 'static_resources.clusters');
  const node = optObj(raw.node, 'node') ?? {};
  const dr = optObj(raw.dynamic_resources, 'dynamic_resources');
  const adsAddresses: string[] = [];
  const ads = optObj(dr?.ads_config, 'dynamic_resources.ads_config');
  if (ads !== undefined) {
    if (ads.api_type !== undefined && ads.api_type !== 'GRPC' && ads.api_type !== 'AGGREGATED_GRPC') fail('dynamic_resources.ads_config.api_type', 'only GRPC (state of the world) is supported');
    arr(ads.grpc_services, 'dynamic_resources.ads_config.grpc_services').forEach((g, i) => {
      const p = `dynamic_resources.ads_config.grpc_services[${i}]`;
      const gs = obj(g, p);
      if (gs.google_grpc !== undefined) {
        adsAddresses.push(str(obj(gs.google_grpc, `${p}.google_grpc`).target_uri, `${p}.google_grpc.target_uri`));
        return;
      }
      const clusterName = str(obj(gs.envoy_grpc, `${p}.envoy_grpc`).cluster_name, `${p}.envoy_grpc.cluster_name`);
      const cluster = staticClusters.find((c) => isObject(c) && c.name === clusterName);
      if (!isObject(cluster)) fail(`${p}.envoy_grpc.cluster_name`, `no static cluster named "${clusterName}"`);
      for (const e of compileLoadAssignment(cluster.load_assignment, `static_resources.clusters[${clusterName}].load_assignment`, clusterName).endpoints) {
        adsAddresses.push(`${e.address.includes(':') ? `[${e.address}]` : e.address}:${e.port}`);
      }
    });
    if (adsAddresses.length === 0) fail('dynamic_resources.ads_config.grpc_services', 'names no server');
  }
  const metadata = optObj(node.metadata, 'node.metadata') ?? {};
  const admin = optObj(raw.admin, 'admin');
  return {
    raw,
    node: { id: typeof node.id === 'string' ? node.id : undefined, cluster: typeof node.cluster === 'string' ? node.cluster : undefined, metadata },
    staticListeners,
    staticClusters,
    adsAddresses,
    adminAddr: admin?.address === undefined ? undefined : addressOf(admin.address, 'admin.address'),
  };
}
