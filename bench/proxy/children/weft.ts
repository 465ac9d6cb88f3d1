/**
 * Peer: the Weft proxy (src/proxy startProxy) with a static bootstrap: one listener
 * on --port, routes everything to one STATIC cluster at 127.0.0.1:--upstream.
 * --workers N > 1 is `startProxy({ concurrency: N })` (src/proxy/workers/): N
 * node:cluster workers sharing the listener port (the primary accepts and hands
 * connections out round-robin) plus the primary, which serves admin.
 */
import { startProxy, type Proxy } from '../../../src/proxy/proxy.js';
import { HOST } from '../common.js';
import { args, watchdog } from './watchdog.js';

const a = args();
const workers = Number(a.workers ?? '1');

function benchBootstrap(listenPort: number, upstreamPort: number): Record<string, unknown> {
  const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
  const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
  return {
    static_resources: {
      listeners: [{
        name: 'bench',
        address: { socket_address: { address: HOST, port_value: listenPort } },
        filter_chains: [{ filters: [{
          name: 'envoy.filters.network.http_connection_manager',
          typed_config: {
            '@type': HCM,
            stat_prefix: 'bench',
            route_config: { name: 'bench', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'up' } }] }] },
            http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
          },
        }] }],
      }],
      clusters: [{
        name: 'up',
        type: 'STATIC',
        connect_timeout: '1s',
        load_assignment: { cluster_name: 'up', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: HOST, port_value: upstreamPort } } } }] }] },
      }],
    },
  };
}

const held: { proxy?: Proxy } = {};
watchdog(async () => { await held.proxy?.close(); });
held.proxy = await startProxy({
  bootstrap: benchBootstrap(Number(a.port), Number(a.upstream)),
  adminAddr: `${HOST}:${a.admin ?? '0'}`,
  logLevel: process.env.WEFT_BENCH_LOG ?? 'silent',
  drainMs: 0,
  concurrency: workers,
});
