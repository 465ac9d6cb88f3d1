/**
 * Envoy's outlier detection (passive health) for one cluster, with its rules:
 * - consecutive_5xx: that many 5xx (or local-origin failures: connect failure, reset,
 *   timeout, which Envoy counts as 503/504) in a row eject the host;
 * - consecutive_gateway_failure: the same for 502/503/504 and local-origin failures;
 * - success rate: every interval, among hosts with ≥ request_volume requests in the
 *   interval (and at least minimum_hosts of them), a host whose success rate is below
 *   mean − stdev_factor/1000 × stdev is ejected;
 * - an ejection lasts base_ejection_time × (number of times ejected), capped at
 *   max_ejection_time; the count goes back down by one for each interval the host
 *   spends un-ejected;
 * - at most max_ejection_percent of the hosts are ejected at once, but at least one
 *   host may always be ejected (Envoy's rule).
 * Each enforcing_* is the percentage of detections that actually eject (a random draw).
 *
 * Time and randomness are injected so tests run on a fake clock; `tick()` is what the
 * interval timer calls.
 */
import type { OutlierConfig } from '../../config/types.js';
import type { HostHealth } from '../cluster/host-health.js';
import type { AttemptOutcome } from '../retry/outcome.js';

interface HostState {
  consecutive5xx: number;
  consecutiveGateway: number;
  /** Requests and successes in the current interval (success-rate). */
  total: number;
  success: number;
  ejections: number;
  ejectedUntil: number;
}

export interface OutlierOptions {
  readonly now?: () => number;
  readonly random?: () => number;
  /** false: no interval timer (tests call tick()). */
  readonly timer?: boolean;
  readonly onEject?: (key: string, reason: 'consecutive_5xx' | 'consecutive_gateway_failure' | 'success_rate') => void;
}

export class OutlierDetector {
  private readonly hosts = new Map<string, HostState>();
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly interval: NodeJS.Timeout | undefined;
  ejectionsTotal = 0;

  constructor(readonly config: OutlierConfig, private readonly health: HostHealth, private readonly opts: OutlierOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
    if (opts.timer !== false) {
      this.interval = setInterval(() => this.tick(), config.intervalMs);
      this.interval.unref();
    }
  }

  /** The hosts EDS lists now; state of the others is dropped. */
  setHosts(keys: ReadonlySet<string>): void {
    for (const k of keys) if (!this.hosts.has(k)) this.hosts.set(k, { consecutive5xx: 0, consecutiveGateway: 0, total: 0, success: 0, ejections: 0, ejectedUntil: 0 });
    for (const k of this.hosts.keys()) if (!keys.has(k)) this.hosts.delete(k);
  }

  report(key: string, o: AttemptOutcome): void {
    const s = this.hosts.get(key);
    if (s === undefined) return;
    let is5xx: boolean; let gateway: boolean;
    if (o.kind === 'response') {
      is5xx = o.status >= 500;
      gateway = o.status === 502 || o.status === 503 || o.status === 504;
    } else {
      // Local-origin errors without split_external_local_origin_errors: Envoy maps them to 503/504.
      is5xx = true; gateway = true;
    }
    s.total++;
    if (!is5xx) {
      s.success++;
      s.consecutive5xx = 0;
      s.consecutiveGateway = 0;
      return;
    }
    s.consecutive5xx++;
    if (gateway) s.consecutiveGateway++; else s.consecutiveGateway = 0;
    if (this.health.isEjected(key)) return;
    const c = this.config;
    if (c.consecutiveGatewayFailure > 0 && s.consecutiveGateway >= c.consecutiveGatewayFailure && this.enforce(c.enforcingConsecutiveGatewayFailure)) {
      this.eject(key, s, 'consecutive_gateway_failure');
    } else if (c.consecutive5xx > 0 && s.consecutive5xx >= c.consecutive5xx && this.enforce(c.enforcingConsecutive5xx)) {
      this.eject(key, s, 'consecutive_5xx');
    }
  }

  /** The interval: success-rate ejection, un-ejection, ejection-count decay. */
  tick(): void {
    const now = this.now();
    for (const [key, s] of this.hosts) {
      if (this.health.isEjected(key)) {
        if (now >= s.ejectedUntil) {
          this.health.setEjected(key, false);
          s.consecutive5xx = 0;
          s.consecutiveGateway = 0;
        }
      } else if (s.ejections > 0) {
        s.ejections--;
      }
    }
    this.successRate();
    for (const s of this.hosts.values()) { s.total = 0; s.success = 0; }
  }

  private successRate(): void {
    const c = this.config;
    if (c.enforcingSuccessRate === 0) return;
    const eligible = [...this.hosts].filter(([k, s]) => s.total >= c.successRateRequestVolume && !this.health.isEjected(k));
    if (eligible.length < c.successRateMinimumHosts || eligible.length === 0) return;
    const rates = eligible.map(([, s]) => (s.success / s.total) * 100);
    const mean = rates.reduce((a, b) => a + b, 0) / rates.length;
    const stdev = Math.sqrt(rates.reduce((a, r) => a + (r - mean) ** 2, 0) / rates.length);
    const threshold = mean - (c.successRateStdevFactor / 1000) * stdev;
    eligible.forEach(([key, s], i) => {
      if (rates[i]! < threshold && this.enforce(c.enforcingSuccessRate)) this.eject(key, s, 'success_rate');
    });
  }

  private enforce(percent: number): boolean {
    return percent >= 100 || (percent > 0 && this.random() * 100 < percent);
  }

  private eject(key: string, s: HostState, reason: 'consecutive_5xx' | 'consecutive_gateway_failure' | 'success_rate'): void {
    const ejected = this.health.ejectedCount;
    // Envoy: never beyond max_ejection_percent, except that one host may always be ejected.
    if (ejected > 0 && (ejected + 1) * 100 > this.config.maxEjectionPercent * this.hosts.size) return;
    s.ejections++;
    s.ejectedUntil = this.now() + Math.min(this.config.baseEjectionTimeMs * s.ejections, Math.max(this.config.maxEjectionTimeMs, this.config.baseEjectionTimeMs));
    this.ejectionsTotal++;
    this.health.setEjected(key, true);
    this.opts.onEject?.(key, reason);
  }

  close(): void {
    if (this.interval !== undefined) clearInterval(this.interval);
  }
}
