/**
 * Active health checking for one cluster (the first of its health_checks, as Envoy
 * runs each independently; Weft runs one). Each host is probed every interval;
 * unhealthy_threshold failures in a row mark it failed (it leaves the load balancer),
 * healthy_threshold successes in a row bring it back. A probe that does not finish
 * within timeout is a failure. New hosts count as healthy until proven otherwise
 * (Envoy instead holds them out until the first probe passes; Weft avoids refusing
 * traffic while a freshly pushed cluster's first probes are in flight).
 *
 * Probes: HTTP GET (path, expected_statuses), TCP connect, gRPC health
 * (grpc.health.v1.Health/Check over HTTP/2: SERVING passes).
 */
import { request as httpRequest } from 'node:http';
import { connect as h2connect, constants as h2c } from 'node:http2';
import { connect as netConnect } from 'node:net';
import type { HealthCheckConfig } from '../../config/types.js';
import type { HostHealth } from '../cluster/host-health.js';

export interface ProbeTarget { readonly key: string; readonly address: string; readonly port: number }

interface HostState { target: ProbeTarget; failures: number; successes: number; timer: NodeJS.Timeout | undefined; running: boolean }

/** One probe: resolves true (healthy) or false; must settle within timeoutMs. */
export type Probe = (t: ProbeTarget, cfg: HealthCheckConfig) => Promise<boolean>;

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
      ok = await withTimeout(this.probe(s.target, this.config), this.config.timeoutMs);
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

const hostPort = (t: ProbeTarget): string => (t.address.includes(':') ? `[${t.address}]:${t.port}` : `${t.address}:${t.port}`);

export const defaultProbe: Probe = (t, cfg) => {
  switch (cfg.kind.type) {
    case 'tcp': return tcpProbe(t, cfg.timeoutMs);
    case 'http': return httpProbe(t, cfg.kind.path, cfg.kind.host, cfg.kind.expected, cfg.timeoutMs);
    case 'grpc': return grpcProbe(t, cfg.kind.serviceName, cfg.kind.authority, cfg.timeoutMs);
  }
};

function tcpProbe(t: ProbeTarget, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect({ host: t.address, port: t.port });
    const timer = setTimeout(() => { s.destroy(); resolve(false); }, timeoutMs);
    s.once('connect', () => { clearTimeout(timer); s.destroy(); resolve(true); });
    s.once('error', () => { clearTimeout(timer); resolve(false); });
  });
}

function httpProbe(t: ProbeTarget, path: string, host: string | undefined, expected: readonly (readonly [number, number])[], timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const r = httpRequest({
      host: t.address, port: t.port, path, method: 'GET', agent: false,
      headers: { host: host ?? hostPort(t), 'user-agent': 'weft-health-checker', connection: 'close' },
    }, (res) => {
      const code = res.statusCode ?? 0;
      res.resume();
      resolve(expected.some(([a, b]) => code >= a && code < b));
    });
    r.setTimeout(timeoutMs, () => r.destroy());
    r.on('error', () => resolve(false));
    r.end();
  });
}

/** grpc.health.v1.HealthCheckRequest { string service = 1; } encoded by hand. */
function encodeHealthRequest(service: string): Buffer {
  const s = Buffer.from(service);
  const msg = s.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a]), varint(s.length), s]);
  const frame = Buffer.alloc(5);
  frame.writeUInt32BE(msg.length, 1);
  return Buffer.concat([frame, msg]);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) { out.push((n & 0x7f) | 0x80); n >>>= 7; }
  out.push(n);
  return Buffer.from(out);
}

/** HealthCheckResponse { ServingStatus status = 1; } — SERVING is 1. */
export function decodeServingStatus(body: Buffer): number | undefined {
  if (body.length < 5) return undefined;
  const len = body.readUInt32BE(1);
  const msg = body.subarray(5, 5 + len);
  let i = 0;
  let status = 0; // proto3 default: UNKNOWN
  while (i < msg.length) {
    const tag = msg[i++]!;
    const field = tag >> 3; const wire = tag & 7;
    if (wire === 0) {
      let v = 0; let shift = 0;
      for (;;) { const b = msg[i++]; if (b === undefined) return undefined; v |= (b & 0x7f) << shift; shift += 7; if ((b & 0x80) === 0) break; }
      if (field === 1) status = v;
    } else if (wire === 2) {
      let l = 0; let shift = 0;
      for (;;) { const b = msg[i++]; if (b === undefined) return undefined; l |= (b & 0x7f) << shift; shift += 7; if ((b & 0x80) === 0) break; }
      i += l;
    } else {
      return undefined;
    }
  }
  return status;
}

function grpcProbe(t: ProbeTarget, service: string, authority: string | undefined, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (ok: boolean): void => { if (done) return; done = true; clearTimeout(timer); session.destroy(); resolve(ok); };
    const session = h2connect(`http://${hostPort(t)}`);
    const timer = setTimeout(() => finish(false), timeoutMs);
    session.on('error', () => finish(false));
    const s = session.request({
      ':method': 'POST', ':path': '/grpc.health.v1.Health/Check', ':authority': authority ?? hostPort(t),
      'content-type': 'application/grpc', te: 'trailers', 'user-agent': 'weft-health-checker',
    });
    const chunks: Buffer[] = [];
    let grpcStatus: string | undefined;
    let httpOk = false;
    s.on('response', (h) => {
      httpOk = h[':status'] === 200;
      if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
    });
    s.on('trailers', (h) => { if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']); });
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => finish(httpOk && grpcStatus === '0' && decodeServingStatus(Buffer.concat(chunks)) === 1));
    s.on('error', () => finish(false));
    s.on('close', () => { if (s.rstCode !== undefined && s.rstCode !== h2c.NGHTTP2_NO_ERROR) finish(false); else finish(httpOk && grpcStatus === '0' && decodeServingStatus(Buffer.concat(chunks)) === 1); });
    s.end(encodeHealthRequest(service));
  });
}
