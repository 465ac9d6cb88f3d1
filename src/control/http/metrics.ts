import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { ConfigStore } from '../../store/types.js';
import type { TypeShortName } from '../xds/ads-server.js';
import type { XdsStatusSource } from './xds.js';
import type { CaMetricsSource } from '../identity/ca-service.js';

export interface ControlMetricsOptions {
  store: ConfigStore;
  xds?: XdsStatusSource;
  /** The CA (issued certificates, soonest expiry); without it those series are absent. */
  ca?: CaMetricsSource;
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
  const { ca } = opts;
  if (ca !== undefined) {
    new Counter({
      name: 'weft_control_certificates_issued_total',
      help: 'workload certificates the CA issued since the control plane started',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(ca.stats().issuedTotal);
      },
    });
    new Gauge({
      name: 'weft_control_certificate_soonest_expiry_seconds',
      help: 'Unix time (seconds) at which the soonest-expiring live workload certificate issued by this control plane expires; NaN when none is live (so `metric - time() < 3600` alerts stay quiet)',
      registers: [registry],
      collect() {
        const soonest = ca.stats().soonestExpiry;
        this.set(soonest === undefined ? NaN : soonest.getTime() / 1000);
      },
    });
  }
  // Only when the control plane runs an election (etcd store): it passes the
  // leader through the xDS status object (see control-plane.ts).
  if (xds !== undefined && 'leader' in xds) {
    const source = xds as { readonly leader?: { isLeader(): boolean } };
    new Gauge({
      name: 'weft_control_leader',
      help: '1 while this replica holds the etcd leader lease (runs the singleton duties), else 0',
      registers: [registry],
      collect() {
        this.set(source.leader?.isLeader() === true ? 1 : 0);
      },
    });
  }
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
