/**
 * IPC between the proxy primary and its node:cluster workers (JSON over the cluster
 * channel). The primary owns the config (one ADS stream); each worker runs the data
 * plane (listeners, pools) on the snapshots it is sent.
 */
import type { ResourceKind, Snapshot } from '../config/state.js';
import type { ProtoJson } from '../config/types.js';
import type { HostCounters, HostCountersLookup } from '../admin/admin-server.js';
import { ProxyStats } from '../stats.js';
import type { TlsMaterialDump } from '../tls/tls-material.js';
import type { TapSpec } from '../telemetry/recorder.js';
import type { SummaryWire, TapEventsWire } from '../../telemetry/telemetry-proto.js';

/** Worker options that survive JSON (the function-valued ProxyOptions stay in the primary). */
export interface WorkerOptions {
  readonly bootstrap?: string | ProtoJson;
  readonly listenerAddresses?: Readonly<Record<string, string>>;
  readonly drainMs?: number;
  readonly logLevel?: string;
  /** The proxy's own Service: workers count telemetry and push it to the primary. */
  readonly telemetry?: { readonly name: string; readonly namespace: string };
  /** The primary's xDS node and SPIFFE ID: the workers' metric labels name the same proxy (observability/labels.ts). */
  readonly node?: { readonly id: string; readonly metadata: Record<string, unknown> };
  readonly principal?: string;
}

export const WORKER_OPTIONS_ENV = 'WEFT_PROXY_WORKER_OPTIONS';
export const WORKER_INDEX_ENV = 'WEFT_PROXY_WORKER_INDEX';

/** Order in which a worker applies a config message (all in one tick, so requests never see a mix). */
export const APPLY_ORDER: readonly ResourceKind[] = ['cluster', 'endpoint', 'route', 'listener'];

export interface ConfigMessage {
  readonly t: 'config';
  readonly seq: number;
  /** The dynamic (non-bootstrap) resources in force, raw, per kind; workers load the bootstrap's themselves. */
  readonly resources: Readonly<Record<ResourceKind, readonly ProtoJson[]>>;
  readonly versions: Readonly<Record<ResourceKind, string>>;
}

export type ToWorker =
  | ConfigMessage
  | { readonly t: 'stats'; readonly id: number }
  /** The taps in force (the whole set, each time it changes). */
  | { readonly t: 'taps'; readonly taps: readonly TapSpec[] }
  | { readonly t: 'drain'; readonly id: number }
  | { readonly t: 'close'; readonly id: number }
  /**
   * The TLS secrets (SVID key and chain, trust bundles), whole, at start and after each
   * rotation. Only over this local IPC channel: keys are never written anywhere.
   */
  | { readonly t: 'tls'; readonly material: TlsMaterialDump };

export type FromWorker =
  | { readonly t: 'up' }
  | { readonly t: 'applied'; readonly seq: number; readonly ports: Record<string, number>; readonly error?: string }
  | { readonly t: 'stats'; readonly id: number; readonly stats: StatsWire; readonly hosts: HostCountersWire }
  | { readonly t: 'done'; readonly id: number }
  /** A worker's telemetry since its last push (src/proxy/telemetry/worker-push.ts). */
  | { readonly t: 'telemetry'; readonly summary: SummaryWire; readonly tap: TapEventsWire };

export function configMessage(snap: Snapshot, seq: number): ConfigMessage {
  const pick = (m: ReadonlyMap<string, { raw: ProtoJson; isStatic: boolean }>): ProtoJson[] => [...m.values()].filter((e) => !e.isStatic).map((e) => e.raw);
  return {
    t: 'config',
    seq,
    resources: { cluster: pick(snap.tables.cluster), endpoint: pick(snap.tables.endpoint), route: pick(snap.tables.route), listener: pick(snap.tables.listener) },
    versions: snap.versions,
  };
}

/**
 * ProxyStats as JSON: its number fields, and its Maps as entry lists (values are numbers
 * or objects of numbers). Generic, so that counters added to ProxyStats later are summed too.
 */
export interface StatsWire {
  readonly numbers: Record<string, number>;
  readonly maps: Record<string, [string, unknown][]>;
}

export function statsToWire(s: ProxyStats): StatsWire {
  const numbers: Record<string, number> = {};
  const maps: Record<string, [string, unknown][]> = {};
  for (const [k, v] of Object.entries(s)) {
    if (typeof v === 'number') numbers[k] = v;
    else if (v instanceof Map) maps[k] = [...(v as Map<string, unknown>)];
  }
  return { numbers, maps };
}

function addInto(target: Record<string, unknown>, src: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(src)) {
    if (typeof v === 'number') target[k] = (typeof target[k] === 'number' ? target[k] : 0) + v;
    // Histogram buckets (observability/metrics.ts): arrays of numbers, summed element-wise.
    else if (Array.isArray(v)) {
      const t = Array.isArray(target[k]) ? (target[k] as number[]) : (target[k] = v.map(() => 0) as number[]);
      v.forEach((x, i) => { if (typeof x === 'number') t[i] = (t[i] ?? 0) + x; });
    }
  }
}

/** Adds a worker's stats into `into` (a ProxyStats of the primary's, fresh per scrape). */
export function mergeStats(into: ProxyStats, w: StatsWire): void {
  const rec = into as unknown as Record<string, unknown>;
  for (const [k, v] of Object.entries(w.numbers)) if (typeof rec[k] === 'number') rec[k] = (rec[k] as number) + v;
  for (const [k, entries] of Object.entries(w.maps)) {
    const m = rec[k];
    if (!(m instanceof Map)) continue;
    for (const [key, val] of entries) {
      const cur: unknown = m.get(key);
      if (typeof val === 'number') m.set(key, (typeof cur === 'number' ? cur : 0) + val);
      else if (typeof val === 'object' && val !== null) {
        if (typeof cur === 'object' && cur !== null) addInto(cur as Record<string, unknown>, val as Record<string, unknown>);
        else m.set(key, { ...(val as Record<string, unknown>) });
      }
    }
  }
}

/** cluster name → [host key, counters] of the hosts in a worker's snapshot. */
export type HostCountersWire = Record<string, [string, HostCounters][]>;

export function hostCountersToWire(snap: Snapshot): HostCountersWire {
  const out: HostCountersWire = {};
  for (const c of snap.clusters.values()) out[c.name] = c.hosts.map((h) => [h.key, { active: h.stats.active, total: h.stats.total, connectFailures: h.stats.connectFailures }]);
  return out;
}

/** Sums the workers' host counters into a lookup for the admin's /clusters. */
export function sumHostCounters(all: readonly HostCountersWire[]): HostCountersLookup {
  const sum = new Map<string, { active: number; total: number; connectFailures: number }>();
  for (const w of all) {
    for (const [cluster, hosts] of Object.entries(w)) {
      for (const [key, st] of hosts) {
        const k = `${cluster}\u0000${key}`;
        const cur = sum.get(k) ?? { active: 0, total: 0, connectFailures: 0 };
        cur.active += st.active;
        cur.total += st.total;
        cur.connectFailures += st.connectFailures;
        sum.set(k, cur);
      }
    }
  }
  return (cluster, key) => sum.get(`${cluster}\u0000${key}`) ?? { active: 0, total: 0, connectFailures: 0 };
}

/** Total downstream requests in a stats object (all classes and flags). */
export function requestTotal(w: StatsWire): number {
  let n = 0;
  for (const [, v] of w.maps.requests ?? []) if (typeof v === 'number') n += v;
  return n;
}
