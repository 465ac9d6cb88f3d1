import type { ServerResponse } from 'node:http';
import { WeftError } from '../../lib/errors.js';
import type { ClientStatus, TypeShortName } from '../xds/ads-server.js';
import type { XdsResource } from '../xds/snapshot.js';
import { sendJson } from './errors.js';

/** What the HTTP API reads from the ADS server (AdsServer satisfies it). */
export interface XdsStatusSource {
  listClients(): ClientStatus[];
  configOf(nodeId: string): Partial<Record<TypeShortName, XdsResource[]>> | undefined;
  /** Totals since start. Per-type maps, when the source keeps them, label the metrics by type. */
  readonly counters: {
    pushes: number;
    nacks: number;
    stale: number;
    pushesByType?: Partial<Record<TypeShortName, number>>;
    nacksByType?: Partial<Record<TypeShortName, number>>;
  };
}

/** The config sections of `/xds/clients/{nodeId}/config`, in make-before-break order's reading order. */
export const CONFIG_SECTIONS = { listeners: 'LDS', routes: 'RDS', clusters: 'CDS', endpoints: 'EDS' } as const satisfies Record<string, TypeShortName>;
export type ConfigSection = keyof typeof CONFIG_SECTIONS;

export function xdsClients(xds: XdsStatusSource | undefined, res: ServerResponse): void {
  const items = need(xds)
    .listClients()
    .sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : Number(a.id) - Number(b.id)));
  sendJson(res, 200, { items });
}

/** `{ nodeId, listeners, routes, clusters, endpoints }`: the resources last sent, per type; `?type=` keeps one. */
export function xdsClientConfig(xds: XdsStatusSource | undefined, res: ServerResponse, nodeId: string, query: URLSearchParams): void {
  const source = need(xds);
  const type = query.get('type');
  const sections = Object.keys(CONFIG_SECTIONS) as ConfigSection[];
  if (type !== null && !(sections as string[]).includes(type)) {
    throw new WeftError('WEFT_ERR_BAD_REQUEST', `type: must be one of ${sections.join(', ')}, got "${type.slice(0, 32)}"`);
  }
  const config = source.configOf(nodeId);
  if (config === undefined) throw new WeftError('WEFT_ERR_NOT_FOUND', `no xDS client with node id "${nodeId}" is connected`);
  const body: Record<string, unknown> = { nodeId };
  for (const s of sections) if (type === null || type === s) body[s] = config[CONFIG_SECTIONS[s]] ?? [];
  sendJson(res, 200, body);
}

function need(xds: XdsStatusSource | undefined): XdsStatusSource {
  if (xds === undefined) throw new WeftError('WEFT_ERR_UNAVAILABLE', 'this control plane serves no xDS');
  return xds;
}
