import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { ConfigStore } from '../../store/types.js';
import type { TypeShortName } from '../xds/ads-server.js';
import type { XdsStatusSource } from './xds.js';

export interface ControlMetricsOptions {
  store: ConfigStore;
  xds?: XdsStatusSource;
}

/**
 * The control plane's Prometheus registry, its own (never prom-client's global
 * one: tests and embedders may run several control planes in one process).
 *
 * Everything is read at scrape time from the state the parts already keep (the
 * ADS server's counters, its streams, the store's revision), so nothing on the
 * push path pays for metrics. Counters are therefore set, not incremented: each
 * scrape copies the source's running totals.
 */
export function createControlMetrics(opts: ControlMetricsOptions): Registry {
  const registry = new Registry();
  // Unprefixed (process_*, nodejs_*), as every Prometheus client names them, so stock dashboards work.
  collectDefaultMetrics({ register: registry });
  const { xds, store } = opts;

  new Gauge({
    name: 'weft_control_xds_clients',
    help: 'xDS clients (proxies and proxyless gRPC applications) connected now',
    registers: [registry],
    collect() {
      this.set(xds?.listClients().length ?? 0);
    },
  });
  new Counter({
    name: 'weft_control_xds_pushes_total',
    help: 'xDS responses sent (one per type per change a client sees); labelled by type when the ADS server counts per type',
    labelNames: ['type'],
    registers: [registry],
    collect() {
      copyCounter(this, xds?.counters.pushes ?? 0, xds?.counters.pushesByType);
    },
  });
  new Counter({
    name: 'weft_control_xds_nacks_total',
    help: 'xDS responses rejected by a client (NACK); labelled by type when the ADS server counts per type',
    labelNames: ['type'],
    registers: [registry],
    collect() {
      copyCounter(this, xds?.counters.nacks ?? 0, xds?.counters.nacksByType);
    },
  });
  new Counter({
    name: 'weft_control_xds_stale_requests_total',
    help: 'xDS requests ignored because they answered an older response (stale nonce)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(xds?.counters.stale ?? 0);
    },
  });
  new Gauge({
    name: 'weft_control_store_revision',
    help: 'the store revision (the last write)',
    registers: [registry],
    async collect() {
      try {
        this.set(await store.revision());
      } catch {
        // A store that cannot answer shows in /healthz; the scrape still succeeds.
      }
    },
  });
  return registry;
}

/**
 * The ADS server keeps totals; per-type totals only if it has them. Without
 * them the series carries no `type` label rather than a made-up one, so
 * `sum(rate(...))` means the same before and after per-type counting arrives.
 */
function copyCounter(c: Counter<'type'>, total: number, byType: Partial<Record<TypeShortName, number>> | undefined): void {
  c.reset();
  if (byType === undefined) {
    c.inc(total);
    return;
  }
  for (const [type, n] of Object.entries(byType)) c.inc({ type }, n);
}
