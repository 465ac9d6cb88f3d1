/**
 * Per-cluster resilience state that outlives config rebuilds of the cluster (keyed by
 * cluster name in the ClusterManager): proxy-decided host health, the outlier
 * detector, the active health checker, and the retry circuit-breaker gauge.
 */
import type { ClusterConfig, HealthCheckConfig, OutlierConfig } from '../../config/types.js';
import { HealthChecker, type Probe } from '../health/health-checker.js';
import { OutlierDetector, type OutlierOptions } from '../outlier/outlier-detector.js';
import type { AttemptOutcome } from '../retry/outcome.js';
import type { ClusterStats } from '../../stats.js';
import { HostHealth } from './host-health.js';

export interface ResilienceOptions {
  readonly outlier?: OutlierOptions;
  readonly probe?: Probe;
}

export class ClusterResilience {
  readonly health = new HostHealth();
  /** Retries in flight (scheduled and not yet finished), the max_retries / budget gauge. */
  retriesActive = 0;
  outlier: OutlierDetector | undefined;
  checker: HealthChecker | undefined;

  constructor(private readonly name: string, readonly stats: ClusterStats, private readonly opts: ResilienceOptions = {}) {}

  /** Applies a (new) cluster config and host list; detectors are kept when their config is unchanged. */
  configure(config: ClusterConfig, hosts: readonly { key: string; address: string; port: number }[]): void {
    const keys = new Set(hosts.map((h) => h.key));
    this.health.retain(keys);
    if (!sameOutlier(this.outlier?.config, config.outlier)) {
      this.outlier?.close();
      this.outlier = undefined;
      // A new detector starts clean: forget ejections of the old one.
      for (const k of keys) this.health.setEjected(k, false);
      if (config.outlier !== undefined) this.outlier = new OutlierDetector(config.outlier, this.health, {
        ...this.opts.outlier,
        onEject: (key, reason) => { this.stats.outlierEjections++; this.opts.outlier?.onEject?.(key, reason); },
      });
    }
    this.outlier?.setHosts(keys);
    const hc = config.healthChecks[0];
    if (!sameHealthCheck(this.checker?.config, hc)) {
      this.checker?.close();
      this.checker = undefined;
      for (const k of keys) this.health.setFailedHc(k, false);
      if (hc !== undefined) this.checker = new HealthChecker(hc, this.health, this.name, this.opts.probe, () => { this.stats.healthCheckFailures++; });
    }
    this.checker?.setHosts(hosts);
  }

  report(key: string, o: AttemptOutcome): void {
    this.outlier?.report(key, o);
  }

  close(): void {
    this.outlier?.close();
    this.checker?.close();
  }
}

function sameOutlier(a: OutlierConfig | undefined, b: OutlierConfig | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && JSON.stringify(a) === JSON.stringify(b));
}

function sameHealthCheck(a: HealthCheckConfig | undefined, b: HealthCheckConfig | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && JSON.stringify(a) === JSON.stringify(b));
}
