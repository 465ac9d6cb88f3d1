import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type MetricType } from 'prom-client';
import type { ConfigStore } from '../../store/types.js';
import { CONVERGENCE_BUCKETS, type ConvergenceHistogram, type TypeShortName } from '../xds/ads-server.js';
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
 * ADS server's counters, its streams, the store's revision), so the push and
 * ACK paths pay only for plain number increments (no label hashing). Counters are
 * therefore set, not incremented: each scrape copies the source's running totals.
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
  new Gauge({
    name: 'weft_control_xds_connected_clients',
    help: 'xDS streams bound to a node now, by client kind: proxy (Weft proxies, Envoy) or grpc (proxyless gRPC)',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      const c = xds?.counters.connected;
      this.reset();
      this.set({ kind: 'proxy' }, c?.proxy ?? 0);
      this.set({ kind: 'grpc' }, c?.grpc ?? 0);
    },
  });
  new SourcedHistogram(
    {
      name: 'weft_control_xds_convergence_seconds',
      help: 'time from a config change (store write or workload registration seen by the control plane) to an affected xDS client ACKing every response it caused; one observation per client per change it converged on (a NACK observes nothing)',
      buckets: [...CONVERGENCE_BUCKETS],
      registers: [registry],
    },
    () => xds?.counters.convergence,
  );
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

/**
 * A histogram whose data the ADS server keeps (ConvergenceHistogram: plain
 * counts, so the ACK path does no label hashing); rendered at scrape time.
 * prom-client's text output reads getForPromString (when a metric has it) and
 * its JSON output get(): both are answered here, from the source (no source:
 * an empty histogram).
 */
class SourcedHistogram extends Histogram {
  private readonly metricName: string;
  private readonly metricHelp: string;

  constructor(
    config: ConstructorParameters<typeof Histogram>[0],
    private readonly source: () => Readonly<ConvergenceHistogram> | undefined,
  ) {
    super(config);
    this.metricName = config.name;
    this.metricHelp = config.help;
  }

  override get(): ReturnType<Histogram['get']> {
    const h = this.source();
    const name = this.metricName;
    const values: Awaited<ReturnType<Histogram['get']>>['values'] = [];
    let cumulative = 0;
    CONVERGENCE_BUCKETS.forEach((le, i) => {
      cumulative += h?.counts[i] ?? 0;
      values.push({ labels: { le }, value: cumulative, metricName: `${name}_bucket` });
    });
    values.push({ labels: { le: '+Inf' }, value: h?.count ?? 0, metricName: `${name}_bucket` });
    values.push({ labels: {}, value: h?.sum ?? 0, metricName: `${name}_sum` });
    values.push({ labels: {}, value: h?.count ?? 0, metricName: `${name}_count` });
    // prom-client's types say `type` is a numeric enum, but the library itself sets and
    // prints the string ('histogram'); `collect` only satisfies the type (never called on a get() result).
    return Promise.resolve({ name, help: this.metricHelp, type: 'histogram' as unknown as MetricType, aggregator: 'sum', values, collect: () => undefined });
  }

  getForPromString(): ReturnType<Histogram['get']> {
    return this.get();
  }
}
