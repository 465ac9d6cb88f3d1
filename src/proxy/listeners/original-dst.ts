/**
 * Transparent mode: how the outbound listener dispatches a connection that iptables
 * redirected to it, by the destination the application really dialled
 * (SO_ORIGINAL_DST, ../capture/original-dst.ts).
 *
 * - A Service VIP (240.240.0.0/16, lib/service-vip.ts) on the port of a `tcp` Service
 *   port → that port's tcp_proxy (the same config as its 127.0.0.1:<port> listener).
 * - A Service VIP on another port → the usual HTTP handling: the Host header the
 *   application sent names the Service.
 * - Any other address is outside the mesh: forwarded as is to where it was going
 *   (Istio's PassthroughCluster, Mesh outboundPolicy ALLOW_ANY) or refused when the
 *   outbound routes end in `block_all` (REGISTRY_ONLY).
 * - Not redirected (an app using the proxy explicitly; SO_ORIGINAL_DST then reports
 *   the listener's own address): the usual handling.
 *
 * Enabled by `weft proxy --transparent`, which sets WEFT_CAPTURE=transparent so that
 * worker processes (node:cluster) inherit the mode.
 */
import { connect, type Socket } from 'node:net';
import type { Snapshot } from '../config/state.js';
import type { ForwardContext } from '../http/forward.js';
import { isServiceVip } from '../../lib/service-vip.js';
import { originalDst, type OriginalDst } from '../capture/original-dst.js';
import { proxyTcp } from './tcp-proxy.js';

export const CAPTURE_ENV = 'WEFT_CAPTURE';
/** The listener iptables redirects outbound traffic to (names.ts on the control side). */
const OUTBOUND_LISTENER = 'outbound';
const OUTBOUND_ROUTE = 'outbound';
/** The catch-all virtual host the control plane adds for REGISTRY_ONLY (routes.ts). */
const BLOCK_ALL = 'block_all';
const PASSTHROUGH_CONNECT_TIMEOUT_MS = 10_000;

export function transparentMode(): boolean {
  return process.env[CAPTURE_ENV] === 'transparent';
}

export type OriginalDstDecision =
  | { kind: 'http' }
  | { kind: 'tcp'; listener: string }
  | { kind: 'passthrough' }
  | { kind: 'refuse' };

/** What to do with a connection whose original destination is `dst` (pure: unit-tested). */
export function decide(dst: OriginalDst, snap: Snapshot): OriginalDstDecision {
  if (isServiceVip(dst.address)) {
    for (const l of snap.listeners.values()) {
      if (l.tcp !== undefined && l.port === dst.port && l.name !== OUTBOUND_LISTENER) return { kind: 'tcp', listener: l.name };
    }
    return { kind: 'http' };
  }
  const routes = snap.routes.get(OUTBOUND_ROUTE);
  const registryOnly = routes?.virtualHosts.some((v) => v.name === BLOCK_ALL) ?? false;
  return registryOnly ? { kind: 'refuse' } : { kind: 'passthrough' };
}

/**
 * Handles a redirected connection on the outbound listener when it is not HTTP for
 * the mesh; returns false when the caller should handle it as usual.
 */
export function dispatchByOriginalDst(listenerName: string, s: Socket, ctx: ForwardContext): boolean {
  if (listenerName !== OUTBOUND_LISTENER || !transparentMode()) return false;
  const snap = ctx.snapshot();
  const stats = ctx.stats;
  const dst = originalDst(s);
  // Conntrack answers for every tracked connection, NATed or not: a connection made to
  // the listener itself (explicit mode, HTTP_PROXY) reports the listener's own address.
  // Passing that through would connect the proxy to itself, forever.
  if (dst === undefined || (dst.port === s.localPort && dst.address === s.localAddress)) return false;
  const d = decide(dst, snap);
  switch (d.kind) {
    case 'http':
      return false;
    case 'tcp': {
      const tcp = snap.listeners.get(d.listener)?.tcp;
      if (tcp === undefined) return false;
      proxyTcp(d.listener, s, tcp, snap, stats, ctx);
      return true;
    }
    case 'refuse':
      stats.listener(listenerName).tcpUpstreamFail++;
      s.destroy();
      return true;
    case 'passthrough':
      passthrough(s, dst);
      return true;
  }
}

/** Pipes the connection to where the application sent it (the proxy's own socket is not captured). */
function passthrough(down: Socket, dst: OriginalDst): void {
  const up = connect({ host: dst.address, port: dst.port, allowHalfOpen: true });
  const timer = setTimeout(() => up.destroy(), PASSTHROUGH_CONNECT_TIMEOUT_MS);
  up.once('connect', () => clearTimeout(timer));
  up.on('error', () => {});
  down.on('error', () => {});
  up.once('close', (hadError: boolean) => {
    clearTimeout(timer);
    if (hadError || up.connecting) down.destroy();
    else if (!down.writableEnded) down.end();
  });
  down.once('close', (hadError: boolean) => {
    if (hadError) up.destroy();
    else if (!up.writableEnded) up.end();
  });
  down.pipe(up);
  up.pipe(down);
}
