/**
 * The telemetry channel's protocol (proto/weft/telemetry/v1/telemetry.proto), loaded
 * with @grpc/proto-loader, and its messages as TypeScript types. Both the proxy
 * (client) and the control plane (server) use it.
 */
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';
import * as grpc from '@grpc/grpc-js';

/** dist/src/telemetry/ (or src/telemetry/) → the package root's proto/. */
const PROTO_DIR = fileURLToPath(new URL('../../../proto/', import.meta.url));
const PROTO_DIR_SRC = fileURLToPath(new URL('../../proto/', import.meta.url));
export const TELEMETRY_PROTO = 'weft/telemetry/v1/telemetry.proto';
export const TELEMETRY_SERVICE = 'weft.telemetry.v1.Telemetry';

export interface PeerWire { name?: string; namespace?: string }
export type Direction = 'inbound' | 'outbound';

export interface TrafficStatWire {
  direction?: string;
  source?: PeerWire;
  destination?: PeerWire;
  route?: string;
  mtls?: boolean;
  requests?: number;
  successes?: number;
  latency_buckets?: number[];
  latency_counts?: number[];
}

export interface SummaryWire {
  start_ms?: number;
  end_ms?: number;
  stats?: TrafficStatWire[];
  active_taps?: number;
  certificate?: CertificateWire;
}

export interface CertificateWire {
  spiffe_id?: string;
  serial_number?: string;
  not_before_ms?: number;
  not_after_ms?: number;
  issuer?: string;
  renewals?: number;
  renewal_failures?: number;
  next_renewal_ms?: number;
  last_error?: string;
  trust_bundle_roots?: number;
}

export interface TapEventWire {
  tap_id?: string;
  time_ms?: number;
  direction?: string;
  method?: string;
  authority?: string;
  path?: string;
  status?: number;
  flags?: string;
  duration_ms?: number;
  source?: PeerWire;
  destination?: PeerWire;
  request_id?: string;
  trace_id?: string;
  route?: string;
}

export interface TapEventsWire {
  events?: TapEventWire[];
  dropped?: { tap_id?: string; count?: number }[];
}

export interface HelloWire { node_id?: string; service?: string; namespace?: string; interval_ms?: number }

export interface ProxyMessage {
  hello?: HelloWire;
  summary?: SummaryWire;
  tap_events?: TapEventsWire;
  status?: { active_taps?: number };
  msg?: 'hello' | 'summary' | 'tap_events' | 'status';
}

export interface TapStartWire { id?: string; path_prefix?: string; method?: string; authority?: string; max_rate?: number; destination?: string }

export interface ControlMessage {
  tap_start?: TapStartWire;
  tap_stop?: { id?: string };
  flush?: Record<string, never>;
  msg?: 'tap_start' | 'tap_stop' | 'flush';
}

const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: Number, enums: String, defaults: false, oneofs: true };

export interface TelemetryDefinitions {
  service: grpc.ServiceDefinition;
  Client: grpc.ServiceClientConstructor;
}

let cached: TelemetryDefinitions | undefined;

export function telemetryDefinitions(): TelemetryDefinitions {
  if (cached !== undefined) return cached;
  let def: protoLoader.PackageDefinition;
  try {
    def = protoLoader.loadSync(TELEMETRY_PROTO, { ...LOADER_OPTIONS, includeDirs: [PROTO_DIR] });
  } catch {
    // Running from src/ (ts loaders) rather than dist/src/.
    def = protoLoader.loadSync(TELEMETRY_PROTO, { ...LOADER_OPTIONS, includeDirs: [PROTO_DIR_SRC] });
  }
  const root = grpc.loadPackageDefinition(def) as unknown as { weft: { telemetry: { v1: { Telemetry: grpc.ServiceClientConstructor } } } };
  const Client = root.weft.telemetry.v1.Telemetry;
  cached = { service: Client.service, Client };
  return cached;
}
