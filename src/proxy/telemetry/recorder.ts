/**
 * The proxy's telemetry state: summary counters per traffic key since the last
 * summary, and the active taps with their bounded event buffers. Fed by the access-log
 * hook (one call per finished request); emptied by the telemetry client (single
 * process) or by a worker's push to its primary (src/proxy/workers/), which merges
 * workers' summaries and events into its own recorder.
 *
 * Per request, with no tap active, the cost is one classification, one Map lookup and
 * a histogram increment: the tap path is behind `taps.size > 0`.
 */
import type { AccessLogEntry } from '../http/forward.js';
import { Histogram } from '../../telemetry/histogram.js';
import type { SummaryWire, TapEventsWire, TapEventWire, TapStartWire, TrafficStatWire } from '../../telemetry/telemetry-proto.js';
import { classify, peerWire, UNKNOWN, type Classified, type Peer } from './classify.js';

/** Events buffered for the control plane across all taps; beyond it they are dropped (and counted). */
export const MAX_BUFFERED_EVENTS = 1000;
export const DEFAULT_TAP_RATE = 100;
export const MAX_TAP_RATE = 1000;
/**
 * Keys per summary. Destinations outside the mesh are named by their authority (any host
 * with ALLOW_ANY), so past this many keys new ones count under destination "unknown".
 */
export const MAX_KEYS = 2000;

export interface TapSpec {
  readonly id: string;
  readonly pathPrefix: string;
  readonly method: string;
  readonly authority: string;
  /** Events per second. */
  readonly maxRate: number;
  /** `name.namespace`: outbound requests to that Service only. */
  readonly destination: string;
}

export function tapSpecOf(w: TapStartWire): TapSpec | undefined {
  if (w.id === undefined || w.id === '') return undefined;
  const rate = w.max_rate === undefined || w.max_rate <= 0 ? DEFAULT_TAP_RATE : Math.min(MAX_TAP_RATE, w.max_rate);
  return { id: w.id, pathPrefix: w.path_prefix ?? '', method: (w.method ?? '').toUpperCase(), authority: (w.authority ?? '').toLowerCase(), maxRate: rate, destination: w.destination ?? '' };
}

interface Tap {
  readonly spec: TapSpec;
  tokens: number;
  refilledAt: number;
  dropped: number;
}

interface Stat {
  readonly c: Classified;
  requests: number;
  successes: number;
  readonly latency: Histogram;
}

export class TelemetryRecorder {
  private stats = new Map<string, Stat>();
  private since: number;
  private readonly taps = new Map<string, Tap>();
  private events: TapEventWire[] = [];
  /** Dropped counts of taps stopped before their drops were reported. */
  private droppedGone = new Map<string, number>();

  constructor(private readonly own: Peer, private readonly now: () => number = Date.now) {
    this.since = now();
  }

  get activeTaps(): number {
    return this.taps.size;
  }

  tapSpecs(): TapSpec[] {
    return [...this.taps.values()].map((t) => t.spec);
  }

  /** The access-log hook. */
  record(e: AccessLogEntry): void {
    const c = classify(e, this.own);
    let key = `${c.direction}|${c.source.name}|${c.source.namespace}|${c.destination.name}|${c.destination.namespace}|${c.route}|${c.mtls ? 1 : 0}`;
    let s = this.stats.get(key);
    if (s === undefined && this.stats.size >= MAX_KEYS) {
      key = `${c.direction}|overflow`;
      s = this.stats.get(key);
      if (s === undefined) this.stats.set(key, (s = { c: { ...c, source: UNKNOWN, destination: UNKNOWN, route: '' }, requests: 0, successes: 0, latency: new Histogram() }));
    }
    if (s === undefined) {
      s = { c, requests: 0, successes: 0, latency: new Histogram() };
      this.stats.set(key, s);
    }
    s.requests++;
    if (c.success) s.successes++;
    s.latency.record(e.durationMs);
    if (this.taps.size > 0) this.tap(e, c);
  }

  private tap(e: AccessLogEntry, c: Classified): void {
    for (const t of this.taps.values()) {
      const f = t.spec;
      if (f.pathPrefix !== '' && !e.path.startsWith(f.pathPrefix)) continue;
      if (f.method !== '' && e.method !== f.method) continue;
      if (f.authority !== '' && e.authority !== f.authority) continue;
      if (f.destination !== '' && (c.direction !== 'outbound' || `${c.destination.name}.${c.destination.namespace}` !== f.destination)) continue;
      const now = this.now();
      t.tokens = Math.min(f.maxRate, t.tokens + ((now - t.refilledAt) / 1000) * f.maxRate);
      t.refilledAt = now;
      if (t.tokens < 1 || this.events.length >= MAX_BUFFERED_EVENTS) {
        t.dropped++;
        continue;
      }
      t.tokens--;
      this.events.push({
        tap_id: f.id, time_ms: e.startTime, direction: c.direction, method: e.method, authority: e.authority, path: e.path,
        status: e.status, flags: e.flag ?? '', duration_ms: Math.round(e.durationMs * 1000) / 1000,
        source: peerWire(c.source), destination: peerWire(c.destination), request_id: e.requestId, route: c.route,
        ...(c.traceId !== undefined ? { trace_id: c.traceId } : {}),
      });
    }
  }

  startTap(spec: TapSpec): void {
    this.taps.set(spec.id, { spec, tokens: spec.maxRate, refilledAt: this.now(), dropped: 0 });
  }

  stopTap(id: string): void {
    const t = this.taps.get(id);
    if (t === undefined) return;
    this.taps.delete(id);
    if (t.dropped > 0) this.droppedGone.set(id, (this.droppedGone.get(id) ?? 0) + t.dropped);
  }

  /** Replaces the set of taps (a worker following its primary's list). */
  setTaps(specs: readonly TapSpec[]): void {
    const want = new Set(specs.map((s) => s.id));
    for (const id of [...this.taps.keys()]) if (!want.has(id)) this.stopTap(id);
    for (const s of specs) if (!this.taps.has(s.id)) this.startTap(s);
  }

  /** Whether events or drops wait to be sent. */
  get hasTapOutput(): boolean {
    if (this.events.length > 0 || this.droppedGone.size > 0) return true;
    for (const t of this.taps.values()) if (t.dropped > 0) return true;
    return false;
  }

  /** Takes the buffered tap events and drop counts. */
  takeTapEvents(): TapEventsWire {
    const events = this.events;
    this.events = [];
    const dropped: { tap_id: string; count: number }[] = [];
    for (const [id, n] of this.droppedGone) dropped.push({ tap_id: id, count: n });
    this.droppedGone.clear();
    for (const t of this.taps.values()) {
      if (t.dropped > 0) dropped.push({ tap_id: t.spec.id, count: t.dropped });
      t.dropped = 0;
    }
    return { events, dropped };
  }

  /** Takes the counters since the last call as one summary. */
  takeSummary(): SummaryWire {
    const end = this.now();
    const stats: TrafficStatWire[] = [];
    for (const s of this.stats.values()) {
      const h = s.latency.toSparse();
      stats.push({
        direction: s.c.direction, source: peerWire(s.c.source), destination: peerWire(s.c.destination), route: s.c.route, mtls: s.c.mtls,
        requests: s.requests, successes: s.successes, latency_buckets: [...h.buckets], latency_counts: [...h.counts],
      });
    }
    const out: SummaryWire = { start_ms: this.since, end_ms: end, stats, active_taps: this.taps.size };
    this.stats = new Map();
    this.since = end;
    return out;
  }

  /**
   * Adds a worker's summary (its counters since its last push) into this recorder's
   * current period, and its tap output into the buffer (bounded like local events).
   */
  mergeWorker(summary: SummaryWire, tap: TapEventsWire): void {
    for (const w of summary.stats ?? []) {
      const c: Classified = {
        direction: w.direction === 'inbound' ? 'inbound' : 'outbound',
        source: { name: w.source?.name ?? '', namespace: w.source?.namespace ?? '' },
        destination: { name: w.destination?.name ?? '', namespace: w.destination?.namespace ?? '' },
        route: w.route ?? '', mtls: w.mtls ?? false, success: true, traceId: undefined,
      };
      const key = `${c.direction}|${c.source.name}|${c.source.namespace}|${c.destination.name}|${c.destination.namespace}|${c.route}|${c.mtls ? 1 : 0}`;
      let s = this.stats.get(key);
      if (s === undefined) {
        s = { c, requests: 0, successes: 0, latency: new Histogram() };
        this.stats.set(key, s);
      }
      s.requests += w.requests ?? 0;
      s.successes += w.successes ?? 0;
      s.latency.mergeSparse({ buckets: w.latency_buckets ?? [], counts: w.latency_counts ?? [] });
    }
    for (const ev of tap.events ?? []) {
      const t = ev.tap_id === undefined ? undefined : this.taps.get(ev.tap_id);
      if (t === undefined) continue;
      if (this.events.length >= MAX_BUFFERED_EVENTS) t.dropped++;
      else this.events.push(ev);
    }
    for (const d of tap.dropped ?? []) {
      if (d.tap_id === undefined || !(d.count! > 0)) continue;
      const t = this.taps.get(d.tap_id);
      if (t !== undefined) t.dropped += d.count!;
      else this.droppedGone.set(d.tap_id, (this.droppedGone.get(d.tap_id) ?? 0) + d.count!);
    }
  }
}
