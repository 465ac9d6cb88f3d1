/**
 * Active health checking for one cluster (the first of its health_checks, as Envoy
 * runs each independently; Weft runs one). Each host is probed every interval;
 * unhealthy_threshold failures in a row mark it failed (it leaves the load balancer),
 * healthy_threshold successes in a row bring it back. A probe that does not finish
 * within timeout is a failure. New hosts count as healthy until proven otherwise
 * (Envoy instead holds them out until the first probe passes; Weft avoids refusing
 * traffic while a freshly pushed cluster's first probes are in flight).
 *
 * Probes (TCP, HTTP, gRPC health; over the cluster's TLS when it has one): probes.ts.
 */
import type { HealthCheckConfig } from '../../config/types.js';
import type { HostHealth } from '../cluster/host-health.js';
import { defaultProbe, type Probe, type ProbeTarget } from './probes.js';

export { createProbe, defaultProbe, type ClusterTlsLookup, type Probe, type ProbeTarget } from './probes.js';

interface HostState { target: ProbeTarget; failures: number; successes: number; timer: NodeJS.Timeout | undefined; running: boolean }

export class HealthChecker {
  private readonly hosts = new Map<string, HostState>();
  private closed = false;
  checksTotal = 0;
  failuresTotal = 0;

  constructor(readonly config: HealthCheckConfig, private readonly health: HostHealth, private readonly clusterName: string, private readonly probe: Probe = defaultProbe, private readonly onFailure?: () => void) {}

  setHosts(targets: readonly ProbeTarget[]): void {
    const keys = new Set(targets.map((t) => t.key));
    for (const [k, s] of this.hosts) {
      if (!keys.has(k)) { if (s.timer !== undefined) clearTimeout(s.timer); this.hosts.delete(k); this.health.setFailedHc(k, false); }
    }
    for (const t of targets) {
      if (this.hosts.has(t.key)) continue;
      const s: HostState = { target: t, failures: 0, successes: 0, timer: undefined, running: false };
      this.hosts.set(t.key, s);
      // First probe soon after the host appears, spread a little so many hosts do not probe in lockstep.
      this.schedule(s, Math.floor(Math.random() * Math.min(50, this.config.intervalMs)));
    }
  }

  private schedule(s: HostState, delay: number): void {
    if (this.closed || this.hosts.get(s.target.key) !== s) return;
    s.timer = setTimeout(() => { void this.run(s); }, delay);
    s.timer.unref();
  }

  private async run(s: HostState): Promise<void> {
    s.timer = undefined;
    if (this.closed || s.running) return;
    s.running = true;
    let ok: boolean;
    try {
      ok = await withTimeout(this.probe(s.target, this.config, this.clusterName), this.config.timeoutMs);
    } catch {
      ok = false;
    }
    s.running = false;
    if (this.closed || this.hosts.get(s.target.key) !== s) return;
    this.checksTotal++;
    if (ok) {
      s.failures = 0;
      s.successes++;
      if (this.health.failedActiveHc(s.target.key) && s.successes >= this.config.healthyThreshold) this.health.setFailedHc(s.target.key, false);
    } else {
      this.failuresTotal++;
      this.onFailure?.();
      s.successes = 0;
      s.failures++;
      if (s.failures >= this.config.unhealthyThreshold) this.health.setFailedHc(s.target.key, true);
    }
    this.schedule(s, this.config.intervalMs);
  }

  close(): void {
    this.closed = true;
    for (const s of this.hosts.values()) if (s.timer !== undefined) clearTimeout(s.timer);
    this.hosts.clear();
  }

  get cluster(): string { return this.clusterName; }
}

function withTimeout(p: Promise<boolean>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    p.then((v) => { clearTimeout(t); resolve(v); }, () => { clearTimeout(t); resolve(false); });
  });
}
