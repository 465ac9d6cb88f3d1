/**
 * Envoy's filter chain selection (api/envoy/config/listener/v3/listener_components.proto,
 * FilterChainMatch): criteria are applied in order: destination port, server name,
 * transport protocol, application protocols. At each step the most specific chains
 * that match survive (an exact value beats a wildcard beats "unset"); a step never
 * backtracks. No survivor: the default_filter_chain, else the connection is closed.
 */
import type { CompiledFilterChain, CompiledListener } from '../config/types.js';

export interface ConnectionFacts {
  readonly destinationPort: number;
  readonly serverName: string | undefined;
  readonly transportProtocol: 'tls' | 'raw_buffer';
  readonly applicationProtocols: readonly string[];
}

/** Where the chain a connection took is remembered (read by forward.ts through node:http2's socket proxy too). */
export const CHAIN_NAME = Symbol.for('weft.filterChain');

function byServerName(chains: readonly CompiledFilterChain[], sn: string | undefined): CompiledFilterChain[] {
  if (sn !== undefined) {
    const exact = chains.filter((c) => c.match.serverNames.includes(sn));
    if (exact.length > 0) return exact;
    // Longest wildcard suffix wins: *.b.example.com over *.example.com.
    let best = -1;
    let out: CompiledFilterChain[] = [];
    for (const c of chains) {
      for (const n of c.match.serverNames) {
        if (!n.startsWith('*.') || !sn.endsWith(n.slice(1))) continue;
        if (n.length > best) { best = n.length; out = [c]; } else if (n.length === best && !out.includes(c)) out.push(c);
      }
    }
    if (out.length > 0) return out;
  }
  return chains.filter((c) => c.match.serverNames.length === 0);
}

export function selectFilterChain(l: CompiledListener, f: ConnectionFacts): CompiledFilterChain | undefined {
  const all = l.chains ?? [];
  let c = all.filter((x) => !x.isDefault);
  const port = c.filter((x) => x.match.destinationPort === f.destinationPort);
  c = port.length > 0 ? port : c.filter((x) => x.match.destinationPort === undefined);
  c = byServerName(c, f.serverName);
  const tp = c.filter((x) => x.match.transportProtocol === f.transportProtocol);
  c = tp.length > 0 ? tp : c.filter((x) => x.match.transportProtocol === undefined);
  const ap = c.filter((x) => x.match.applicationProtocols.some((p) => f.applicationProtocols.includes(p)));
  c = ap.length > 0 ? ap : c.filter((x) => x.match.applicationProtocols.length === 0);
  return c[0] ?? all.find((x) => x.isDefault);
}

/** The chain a request's connection took, by name, in the listener the request's snapshot has. */
export function chainOf(l: CompiledListener | undefined, socket: object | undefined): CompiledFilterChain | undefined {
  if (l === undefined) return undefined;
  const name = socket === undefined ? undefined : (socket as Record<symbol, unknown>)[CHAIN_NAME];
  const chains = l.chains ?? [];
  if (typeof name === 'string') {
    const hit = chains.find((x) => x.name === name);
    if (hit !== undefined) return hit;
  }
  return chains[0];
}
