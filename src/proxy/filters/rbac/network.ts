/**
 * envoy.filters.network.rbac for TCP chains: the same engine on what a connection
 * offers (peer principal, addresses, ports, SNI). HTTP matchers are refused when the
 * config is compiled. Weft decides once, when the connection is handed to the TCP
 * proxy (after the TLS handshake); a denied connection is closed without a byte sent,
 * as Envoy does.
 */
import type { Socket } from 'node:net';
import type { ProtoJson, TcpProxyConfig } from '../../config/types.js';
import { downstreamConnectionOf } from '../../tls/downstream-connection.js';
import type { DownstreamConnection } from '../types.js';
import { compileRbacConfig, type RbacConfig } from './config.js';
import { logRbacDecision } from './decision-log.js';
import { evaluateRbac, type RbacResult } from './engine.js';
import { UnevaluableError, type AuthzInput } from './matchers.js';

export const NETWORK_RBAC_TYPE = 'envoy.extensions.filters.network.rbac.v3.RBAC';

export interface NetworkRbacFilter {
  /** The name the listener gives it (envoy.filters.network.rbac.allow, ...). */
  readonly name: string;
  readonly config: RbacConfig;
}

export interface NetworkRbacVerdict {
  readonly allowed: boolean;
  /** The deciding policy and the filter it belongs to, when one decided. */
  readonly policy: string | undefined;
  readonly filter: string | undefined;
}

const NO_HEADERS = Object.freeze({});
const NO_METADATA: ReadonlyMap<string, Record<string, unknown>> = new Map();
const ALLOWED: NetworkRbacVerdict = Object.freeze({ allowed: true, policy: undefined, filter: undefined });

export function compileNetworkRbac(name: string, fields: ProtoJson, path: string): NetworkRbacFilter {
  return Object.freeze({ name, config: compileRbacConfig(fields, path, 'network') });
}

/**
 * Runs the chain's network RBAC filters in order on a connection; the first denial
 * decides. `connection.localAddress` is needed only by destination_ip policies.
 */
export function evaluateNetworkRbac(compiled: readonly NetworkRbacFilter[], connection: DownstreamConnection & { readonly localAddress?: string | undefined }): NetworkRbacVerdict {
  if (compiled.length === 0) return ALLOWED;
  const input: AuthzInput = { method: '', path: '', authority: '', headers: NO_HEADERS, connection, metadata: NO_METADATA };
  for (const f of compiled) {
    const e = f.config.enforced;
    if (e === undefined) continue;
    let res: RbacResult;
    try {
      res = evaluateRbac(e, input);
    } catch (err) {
      if (!(err instanceof UnevaluableError)) throw err;
      res = { allowed: false, policy: undefined };
    }
    if (e.action === 'LOG') {
      if (res.policy !== undefined) logRbacDecision({ decision: 'logged', action: e.action, policy: res.policy, filter: 'network', principal: connection.peerPrincipal, remote: connection.remoteAddress });
      continue;
    }
    if (!res.allowed) {
      logRbacDecision({ decision: 'denied', action: e.action, policy: res.policy, filter: 'network', principal: connection.peerPrincipal, remote: connection.remoteAddress });
      return { allowed: false, policy: res.policy, filter: f.name };
    }
  }
  return ALLOWED;
}

// The compiled listener types belong to config/; the filters ride beside the TcpProxyConfig
// they guard, so that config/types.ts needs no field for them.
const attached = new WeakMap<TcpProxyConfig, readonly NetworkRbacFilter[]>();

/** Binds a chain's network RBAC filters to its (frozen) TCP proxy config. */
export function attachNetworkRbac(tcp: TcpProxyConfig, filters: readonly NetworkRbacFilter[]): TcpProxyConfig {
  if (filters.length > 0) attached.set(tcp, Object.freeze([...filters]));
  return tcp;
}

export function networkRbacOf(tcp: TcpProxyConfig): readonly NetworkRbacFilter[] {
  return attached.get(tcp) ?? [];
}

/** For tcp-proxy.ts: may this accepted connection go on? */
export function networkRbacAllows(tcp: TcpProxyConfig, down: Socket): boolean {
  const filters = attached.get(tcp);
  if (filters === undefined) return true;
  const c = downstreamConnectionOf(down);
  return evaluateNetworkRbac(filters, c).allowed;
}
