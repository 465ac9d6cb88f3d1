/**
 * envoy.filters.network.tcp_proxy: one downstream connection ↔ one upstream
 * connection to a host of the (weighted) cluster. Bytes are piped both ways with
 * half-close (a FIN from one side is passed on and the other direction keeps
 * flowing). A failed or timed-out connect closes the downstream connection (Envoy
 * does the same: there is nothing to answer with). `idle_timeout` closes both when
 * no byte moved either way for that long.
 */
import { connect, type Socket } from 'node:net';
import type { Snapshot } from '../config/state.js';
import type { TcpProxyConfig } from '../config/types.js';
import type { ProxyStats } from '../stats.js';
import { networkRbacAllows } from '../filters/rbac/network.js';
import type { ClusterHost } from '../upstream/cluster/cluster-manager.js';
import { expectedPeerOf, isInboundListener, localPrincipalOf } from '../observability/request-observer.js';
import { downstreamConnectionOf } from '../tls/downstream-connection.js';
import type { ForwardContext } from '../http/forward.js';
import { TlsMaterial } from '../tls/tls-material.js';
import { connectUpstreamTls } from '../tls/upstream-tls.js';

function pickCluster(cfg: TcpProxyConfig): string {
  if (cfg.weighted === undefined) return cfg.cluster!;
  let r = Math.floor(Math.random() * cfg.weighted.total);
  for (const c of cfg.weighted.clusters) {
    if (r < c.weight) return c.name;
    r -= c.weight;
  }
  return cfg.weighted.clusters[cfg.weighted.clusters.length - 1]!.name;
}

export function proxyTcp(listenerName: string, down: Socket, cfg: TcpProxyConfig, snap: Snapshot, stats: ProxyStats, ctx?: Pick<ForwardContext, 'tls'>): void {
  const ls = stats.listener(listenerName);
  down.on('error', () => {});
  // envoy.filters.network.rbac on this chain: a denied connection is closed before any upstream work.
  if (!networkRbacAllows(cfg, down)) { down.destroy(); return; }
  const clusterName = pickCluster(cfg);
  const c = snap.clusters.get(clusterName);
  // Istio's TCP metrics (observability/): per downstream connection, failed ones included.
  const inbound = isInboundListener(snap.listeners.get(listenerName));
  const tcpSeries = stats.tcp({ inbound, peerPrincipal: inbound ? downstreamConnectionOf(down).peerPrincipal : expectedPeerOf(c), tls: (down as { encrypted?: boolean }).encrypted === true, cluster: clusterName, localPrincipal: inbound ? localPrincipalOf(down) : undefined });
  tcpSeries.opened++;
  down.once('close', () => { tcpSeries.closed++; tcpSeries.received += down.bytesRead; tcpSeries.sent += down.bytesWritten; });
  const h = c?.lb.pick({ hash: undefined }) as ClusterHost | undefined;
  if (c === undefined || h === undefined) {
    ls.tcpUpstreamFail++;
    down.destroy();
    return;
  }
  if (c.stats.upstreamRqActive >= c.config.maxConnections) {
    c.stats.upstreamRqOverflow++;
    ls.tcpUpstreamFail++;
    down.destroy();
    return;
  }
  c.stats.upstreamCxTotal++;
  c.stats.upstreamRqActive++;
  c.stats.upstreamRqTotal++;
  h.stats.active++;
  h.stats.total++;
  let connected = false;
  // A TLS cluster (mTLS to the peer proxy's inbound): "connected" means verified.
  const tls = c.config.tls === undefined ? undefined : {
    config: c.config.tls, material: ctx?.tls?.material ?? new TlsMaterial(), cluster: c.name, stats: c.stats, ssl: stats.sslScope(`cluster.${c.name}`), log: ctx?.tls?.log,
  };
  const up = tls === undefined ? connect({ host: h.address, port: h.port, allowHalfOpen: true }) : connectUpstreamTls(h.address, h.port, tls);
  let last = Date.now();
  let idle: NodeJS.Timeout | undefined;
  const ct = setTimeout(() => {
    c.stats.upstreamCxConnectTimeout++;
    up.destroy(new Error('connect timeout'));
  }, c.config.connectTimeoutMs);
  const armIdle = (ms: number): void => {
    idle = setTimeout(() => {
      const quiet = Date.now() - last;
      if (quiet >= cfg.idleTimeoutMs) {
        ls.cxIdleTimeout++;
        down.destroy();
        up.destroy();
      } else {
        armIdle(cfg.idleTimeoutMs - quiet);
      }
    }, ms);
  };
  if (cfg.idleTimeoutMs > 0) armIdle(cfg.idleTimeoutMs);
  const touch = (): void => { last = Date.now(); };
  down.on('data', touch);
  up.on('data', touch);
  up.once(tls === undefined ? 'connect' : 'secureConnect', () => { connected = true; clearTimeout(ct); });
  up.on('error', () => {
    if (!connected) {
      c.stats.upstreamCxConnectFail++;
      h.stats.connectFailures++;
      ls.tcpUpstreamFail++;
    }
  });
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    clearTimeout(ct);
    if (idle !== undefined) clearTimeout(idle);
    c.stats.upstreamRqActive--;
    h.stats.active--;
  };
  // A reset or error on either side tears down both; a clean FIN is passed on by pipe().
  up.once('close', (hadError: boolean) => {
    release();
    if (hadError || !connected) down.destroy();
    else if (!down.writableEnded) down.end();
  });
  down.once('close', (hadError: boolean) => {
    release();
    if (hadError) up.destroy();
    else if (!up.writableEnded) up.end();
  });
  // The net socket buffers writes until it connects.
  down.pipe(up);
  up.pipe(down);
}
