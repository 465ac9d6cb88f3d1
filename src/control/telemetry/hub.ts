/**
 * The control plane's end of the telemetry channel: the `weft.telemetry.v1.Telemetry`
 * gRPC service (on the xDS server), a ring of summaries per proxy (15 minutes), golden
 * metrics over them (golden.ts), and taps: a tap asked for over HTTP is sent to the
 * proxies it concerns (and to proxies that connect while it runs), their events are
 * handed to the asker, and it is stopped on every proxy when the asker goes away.
 *
 * Each control-plane replica sees only the proxies connected to it (docs/observability.md).
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../lib/log.js';
import type { CertificateWire, ControlMessage, PeerWire, ProxyMessage, SummaryWire, TapEventWire } from '../../telemetry/telemetry-proto.js';
import type { ConfigStore } from '../../store/types.js';
import { computeStats, computeTimeseries, type PeerRef, type ProxyRing, type StatsResponse, type StoredStat, type StoredSummary, type TimeseriesPoint } from './golden.js';
import { RouteRuleIndex, routeLabel } from './route-names.js';

/** How long summaries are kept (and the longest window). */
export const RETENTION_MS = 15 * 60_000;
/** A summary covering more than this (a proxy that was cut off long) is clipped. */
const MAX_SUMMARY_SPAN_MS = 5 * 60_000;
const MAX_STATS_PER_SUMMARY = 10_000;

export interface TapFilter {
  readonly service?: PeerRef;
  readonly proxy?: string;
  readonly pathPrefix?: string;
  readonly method?: string;
  readonly authority?: string;
  readonly maxRate?: number;
}

export interface TapEvent {
  time: string;
  proxy: string;
  direction: string;
  method: string;
  authority: string;
  path: string;
  status: number;
  flags: string;
  durationMs: number;
  source: PeerRef;
  destination: PeerRef;
  requestId: string;
  route?: string;
  traceId?: string;
}

export interface TapSink {
  event(e: TapEvent): void;
  /** `n` events were dropped by a proxy (rate limit, full buffer). */
  dropped(proxy: string, n: number): void;
}

export interface ProxyInfo {
  id: string;
  service: PeerRef;
  connectedAt: string;
  lastSummaryAt: string | undefined;
  activeTaps: number;
  intervalMs: number;
  /** The workload certificate it reported with its last summary (`weft certs`). */
  certificate?: ProxyCertificate;
}

export interface ProxyCertificate {
  spiffeId: string;
  serialNumber: string;
  notBefore: string;
  notAfter: string;
  issuer: string;
  renewals: number;
  renewalFailures: number;
  nextRenewalAt?: string;
  lastError?: string;
  trustBundleRoots: number;
}

function proxyCertificate(w: CertificateWire): ProxyCertificate | undefined {
  if (!w.spiffe_id || !w.serial_number || !w.not_after_ms) return undefined;
  const iso = (ms: number | undefined): string | undefined => (ms ? new Date(Number(ms)).toISOString() : undefined);
  const next = iso(w.next_renewal_ms);
  return {
    spiffeId: w.spiffe_id, serialNumber: w.serial_number, notBefore: iso(w.not_before_ms) ?? '', notAfter: iso(w.not_after_ms)!,
    issuer: w.issuer ?? '', renewals: w.renewals ?? 0, renewalFailures: w.renewal_failures ?? 0,
    ...(next !== undefined ? { nextRenewalAt: next } : {}), ...(w.last_error ? { lastError: w.last_error } : {}),
    trustBundleRoots: w.trust_bundle_roots ?? 0,
  };
}

interface Conn {
  readonly id: string;
  readonly service: PeerRef;
  readonly call: grpc.ServerDuplexStream<ProxyMessage, ControlMessage>;
  readonly connectedAt: number;
  lastSummaryAt: number | undefined;
  activeTaps: number;
  intervalMs: number;
  certificate?: ProxyCertificate | undefined;
}

interface Ring {
  id: string;
  service: PeerRef;
  summaries: StoredSummary[];
}

interface Tap {
  readonly id: string;
  readonly filter: TapFilter;
  readonly sink: TapSink;
  /** Proxies it was sent to. */
  readonly on: Set<string>;
}

const peer = (p: PeerWire | undefined): PeerRef => ({ name: p?.name ?? '', namespace: p?.namespace ?? '' });

/**
 * Over mTLS the client certificate names the proxy's namespace: a proxy may not report
 * (or receive taps) for another namespace. Plaintext streams come from loopback only
 * (the xDS server's guard) and are trusted as ADS is.
 */
function identityMismatch(call: grpc.ServerDuplexStream<ProxyMessage, ControlMessage>, namespace: string): string | undefined {
  let ctx: ReturnType<typeof call.getAuthContext>;
  try {
    ctx = call.getAuthContext();
  } catch {
    return undefined;
  }
  if (ctx.transportSecurityType !== 'ssl') return undefined;
  const san = ctx.sslPeerCertificate?.subjectaltname ?? '';
  const m = /URI:spiffe:\/\/[^/,]+\/ns\/([^/,]+)\/sa\/[^/,\s]+/.exec(san);
  if (m === null) return 'the client certificate has no SPIFFE ID';
  return m[1] === namespace ? undefined : `a proxy of namespace ${m[1]!} may not report for namespace ${namespace || '(none)'}`;
}

export class TelemetryHub {
  private readonly conns = new Map<string, Conn>();
  private readonly rings = new Map<string, Ring>();
  private readonly taps = new Map<string, Tap>();
  private readonly pruneTimer: NodeJS.Timeout;
  /** Rule names of the routes in the store, for readable per-route stats (route-names.ts). */
  private readonly ruleIndex: RouteRuleIndex | undefined;

  /** `store`: where HTTPRoute / GRPCRoute rule names are read from; without it routes show as `ruleN`. */
  constructor(private readonly opts: { log?: Logger; now?: () => number; store?: ConfigStore } = {}) {
    this.pruneTimer = setInterval(() => this.prune(), 30_000);
    this.pruneTimer.unref();
    this.ruleIndex = opts.store === undefined ? undefined : new RouteRuleIndex(opts.store, opts.log);
  }

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  /** The gRPC service implementation: `{ Stream }`. */
  readonly handlers = {
    Stream: (call: grpc.ServerDuplexStream<ProxyMessage, ControlMessage>): void => this.onStream(call),
  };

  private onStream(call: grpc.ServerDuplexStream<ProxyMessage, ControlMessage>): void {
    let conn: Conn | undefined;
    // Response headers now: the proxy counts the stream as up (and sends summaries) from them.
    try { call.sendMetadata(new grpc.Metadata()); } catch { /* the call is already gone */ }
    const end = (): void => {
      if (conn !== undefined && this.conns.get(conn.id) === conn) {
        this.conns.delete(conn.id);
        for (const t of this.taps.values()) t.on.delete(conn.id);
        this.opts.log?.debug({ proxy: conn.id }, 'telemetry: proxy disconnected');
      }
      conn = undefined;
    };
    call.on('data', (m: ProxyMessage) => {
      if (m.hello !== undefined) {
        const id = m.hello.node_id ?? '';
        if (id === '' || conn !== undefined) return;
        const refused = identityMismatch(call, m.hello.namespace ?? '');
        if (refused !== undefined) {
          this.opts.log?.warn({ proxy: id }, `telemetry: ${refused}`);
          call.emit('error', { code: 7 /* PERMISSION_DENIED */, details: refused });
          return;
        }
        const c: Conn = {
          id, call, connectedAt: this.now(), lastSummaryAt: undefined, activeTaps: 0, intervalMs: m.hello.interval_ms ?? 0,
          service: { name: m.hello.service ?? '', namespace: m.hello.namespace ?? '' },
        };
        const old = this.conns.get(id);
        if (old !== undefined) old.call.end();
        conn = c;
        this.conns.set(id, c);
        const ring = this.rings.get(id);
        if (ring === undefined) this.rings.set(id, { id, service: c.service, summaries: [] });
        else ring.service = c.service;
        for (const t of this.taps.values()) this.sendTap(t, c);
        return;
      }
      if (conn === undefined) return; // nothing counts before a Hello
      if (m.summary !== undefined) this.onSummary(conn, m.summary);
      else if (m.status !== undefined) conn.activeTaps = m.status.active_taps ?? 0;
      else if (m.tap_events !== undefined) {
        for (const e of m.tap_events.events ?? []) this.onTapEvent(conn, e);
        for (const d of m.tap_events.dropped ?? []) {
          if (d.tap_id !== undefined && d.count !== undefined && d.count > 0) this.taps.get(d.tap_id)?.sink.dropped(conn.id, d.count);
        }
      }
    });
    call.on('error', end);
    call.on('end', () => { end(); call.end(); });
    call.on('cancelled', end);
    call.on('close', end);
  }

  private onSummary(c: Conn, s: SummaryWire): void {
    const now = this.now();
    c.lastSummaryAt = now;
    c.activeTaps = s.active_taps ?? c.activeTaps;
    if (s.certificate !== undefined) c.certificate = proxyCertificate(s.certificate);
    const ring = this.rings.get(c.id);
    if (ring === undefined) return;
    // Proxy clocks may be off: keep the span it reports, anchored at our receive time.
    const span = Math.max(0, Math.min(MAX_SUMMARY_SPAN_MS, (s.end_ms ?? 0) - (s.start_ms ?? 0)));
    const stats: StoredStat[] = [];
    for (const w of (s.stats ?? []).slice(0, MAX_STATS_PER_SUMMARY)) {
      stats.push({
        direction: w.direction === 'inbound' ? 'inbound' : 'outbound',
        source: peer(w.source), destination: peer(w.destination), route: w.route ?? '', mtls: w.mtls ?? false,
        requests: w.requests ?? 0, successes: Math.min(w.successes ?? 0, w.requests ?? 0),
        buckets: w.latency_buckets ?? [], counts: w.latency_counts ?? [],
      });
    }
    ring.summaries.push({ startMs: now - span, endMs: now, stats });
    this.pruneRing(ring, now);
  }

  private onTapEvent(c: Conn, e: TapEventWire): void {
    const t = e.tap_id === undefined ? undefined : this.taps.get(e.tap_id);
    if (t === undefined) return;
    t.sink.event({
      time: new Date(e.time_ms ?? this.now()).toISOString(), proxy: c.id, direction: e.direction ?? '', method: e.method ?? '',
      authority: e.authority ?? '', path: e.path ?? '', status: e.status ?? 0, flags: e.flags ?? '', durationMs: e.duration_ms ?? 0,
      source: peer(e.source), destination: peer(e.destination), requestId: e.request_id ?? '',
      ...(e.route ? { route: e.route } : {}), ...(e.trace_id ? { traceId: e.trace_id } : {}),
    });
  }

  private pruneRing(r: Ring, now: number): void {
    let drop = 0;
    while (drop < r.summaries.length && r.summaries[drop]!.endMs < now - RETENTION_MS) drop++;
    if (drop > 0) r.summaries.splice(0, drop);
  }

  private prune(): void {
    const now = this.now();
    for (const r of this.rings.values()) {
      this.pruneRing(r, now);
      if (r.summaries.length === 0 && !this.conns.has(r.id)) this.rings.delete(r.id);
    }
  }

  private ringsView(): ProxyRing[] {
    return [...this.rings.values()].map((r) => ({ id: r.id, service: r.service, connected: this.conns.has(r.id), summaries: r.summaries }));
  }

  stats(q: { windowMs: number; window: string; namespace?: string | undefined }): StatsResponse {
    const rules = this.ruleIndex?.lookup;
    return computeStats(this.ringsView(), {
      now: this.now(), windowMs: Math.min(q.windowMs, RETENTION_MS), window: q.window, namespace: q.namespace,
      routeLabel: (route, destination) => routeLabel(route, destination, rules),
    });
  }

  timeseries(q: { service: PeerRef; minutes: number }): { step: number; points: TimeseriesPoint[] } {
    return computeTimeseries(this.ringsView(), { now: this.now(), minutes: Math.min(q.minutes, RETENTION_MS / 60_000), stepS: 5, service: q.service });
  }

  proxies(): ProxyInfo[] {
    return [...this.conns.values()].map((c) => ({
      id: c.id, service: c.service, connectedAt: new Date(c.connectedAt).toISOString(),
      lastSummaryAt: c.lastSummaryAt === undefined ? undefined : new Date(c.lastSummaryAt).toISOString(), activeTaps: c.activeTaps, intervalMs: c.intervalMs,
      ...(c.certificate !== undefined ? { certificate: c.certificate } : {}),
    })).sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Asks every connected proxy for a summary now. */
  flushAll(): void {
    for (const c of this.conns.values()) this.write(c, { flush: {} });
  }

  /** Which proxies a tap concerns, and with which destination filter. */
  private tapTarget(t: Tap, c: Conn): { send: boolean; destination: string } {
    const f = t.filter;
    if (f.proxy !== undefined) return { send: c.id === f.proxy, destination: '' };
    if (f.service === undefined) return { send: true, destination: '' };
    if (c.service.name === f.service.name && c.service.namespace === f.service.namespace) return { send: true, destination: '' };
    // Its callers' outbound side: that is where a Service without sidecars shows up.
    return { send: true, destination: `${f.service.name}.${f.service.namespace}` };
  }

  private sendTap(t: Tap, c: Conn): void {
    const target = this.tapTarget(t, c);
    if (!target.send) return;
    t.on.add(c.id);
    this.write(c, {
      tap_start: {
        id: t.id, path_prefix: t.filter.pathPrefix ?? '', method: t.filter.method ?? '', authority: t.filter.authority ?? '',
        max_rate: t.filter.maxRate ?? 0, destination: target.destination,
      },
    });
  }

  private write(c: Conn, m: ControlMessage): void {
    try {
      c.call.write(m);
    } catch (e) {
      this.opts.log?.debug({ proxy: c.id, err: e }, 'telemetry: write failed');
    }
  }

  /** Starts a tap; returns how many proxies it went to and a stop function. */
  startTap(filter: TapFilter, sink: TapSink): { id: string; proxies: number; stop: () => void } {
    const t: Tap = { id: randomUUID(), filter, sink, on: new Set() };
    this.taps.set(t.id, t);
    for (const c of this.conns.values()) this.sendTap(t, c);
    return {
      id: t.id,
      proxies: t.on.size,
      stop: () => {
        if (!this.taps.delete(t.id)) return;
        for (const id of t.on) {
          const c = this.conns.get(id);
          if (c !== undefined) this.write(c, { tap_stop: { id: t.id } });
        }
      },
    };
  }

  get activeTaps(): number {
    return this.taps.size;
  }

  close(): void {
    clearInterval(this.pruneTimer);
    this.ruleIndex?.close();
    for (const t of [...this.taps.values()]) this.taps.delete(t.id);
    for (const c of this.conns.values()) {
      try { c.call.end(); } catch { /* already gone */ }
    }
    this.conns.clear();
  }
}
