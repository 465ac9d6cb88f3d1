import type { ServerResponse } from 'node:http';
import { WeftError } from '../../lib/errors.js';
import type { ClientKind, ClientStatus, ConvergenceHistogram, TypeShortName } from '../xds/ads-server.js';
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
    /** Connected streams by client kind, and change → ACK times (ads-server.ts), when the source keeps them. */
    connected?: Readonly<Record<ClientKind, number>>;
    convergence?: Readonly<ConvergenceHistogram>;
  };
}

/** The config sections of `/xds/clients/{nodeId}/config`, in make-before-break order's reading order. */
export const CONFIG_SECTIONS = { listeners: 'LDS', routes: 'RDS', clusters: 'CDS', endpoints: 'EDS', secrets: 'SDS' } as const satisfies Record<string, TypeShortName>;
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
  for (const s of sections) {
    if (type !== null && type !== s) continue;
    const list = config[CONFIG_SECTIONS[s]] ?? [];
    body[s] = s === 'secrets' ? list.map(secretSummary) : list;
  }
  sendJson(res, 200, body);
}

/**
 * A Secret as `weft proxy-config` shows it: its name and what kind of
 * material it holds, never the bytes. (Only the trust bundle, ROOTCA, is
 * ever sent; workload keys stay on the workload. This holds if that changes.)
 */
export function secretSummary(secret: XdsResource): Record<string, unknown> {
  const out: Record<string, unknown> = { name: secret.name };
  const vc = secret.validation_context as { trusted_ca?: { inline_bytes?: Uint8Array | string } } | undefined;
  if (vc !== undefined) {
    const raw = vc.trusted_ca?.inline_bytes;
    const pem = raw === undefined ? '' : typeof raw === 'string' ? raw : Buffer.from(raw).toString('utf8');
    out.type = 'validation_context';
    out.trustedCaCertificates = (pem.match(/-----BEGIN CERTIFICATE-----/g) ?? []).length;
  }
  if (secret.tls_certificate !== undefined) out.type = 'tls_certificate';
  return out;
}

function need(xds: XdsStatusSource | undefined): XdsStatusSource {
  if (xds === undefined) throw new WeftError('WEFT_ERR_UNAVAILABLE', 'this control plane serves no xDS');
  return xds;
}
