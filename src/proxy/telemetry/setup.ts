/**
 * Wiring of the proxy's telemetry, kept out of proxy.ts and workers/primary.ts: which
 * recorder a proxy uses, the access-log hook that feeds it, and starting the client
 * (grpc-js is loaded only when a control plane is configured, as for ADS).
 */
import type { ChannelCredentials } from '@grpc/grpc-js';
import type { Logger } from '../../lib/log.js';
import type { AccessLogEntry } from '../http/forward.js';
import { NODE_METADATA } from '../xds-client/node-metadata.js';
import type { Backoff } from '../xds-client/backoff.js';
import { TelemetryRecorder, type TapSpec } from './recorder.js';
import type { TelemetryClient } from './telemetry-client.js';
import type { CertsView } from '../identity/identity-manager.js';
import type { CertificateWire } from '../../telemetry/telemetry-proto.js';

export interface TelemetryOptions {
  /** Summary interval (default 5 s). */
  readonly intervalMs?: number;
  /** A recorder made by the caller (a worker, whose primary sends the summaries). */
  readonly recorder?: TelemetryRecorder;
  /** false: no telemetry stream (the recorder, if any, still counts). */
  readonly stream?: boolean;
  readonly backoff?: Backoff;
  /** The ADS stream's channel credentials (mTLS once the proxy has its SVID); default plaintext. */
  readonly credentials?: () => ChannelCredentials;
}

/** The proxy's own Service from its node metadata; undefined when it serves none. */
export function ownServiceOf(metadata: Record<string, unknown>): { name: string; namespace: string } | undefined {
  const name = metadata[NODE_METADATA.service];
  if (typeof name !== 'string' || name === '') return undefined;
  const ns = metadata[NODE_METADATA.namespace];
  return { name, namespace: typeof ns === 'string' && ns !== '' ? ns : 'default' };
}

export function recorderFor(opts: TelemetryOptions | false | undefined, metadata: Record<string, unknown>): TelemetryRecorder | undefined {
  if (opts === false) return undefined;
  if (opts?.recorder !== undefined) return opts.recorder;
  const own = ownServiceOf(metadata);
  return own === undefined ? undefined : new TelemetryRecorder(own);
}

/** The access-log hook: the recorder first, then the caller's own hook. */
export function accessLogHook(rec: TelemetryRecorder | undefined, user: ((e: AccessLogEntry) => void) | undefined): ((e: AccessLogEntry) => void) | undefined {
  if (rec === undefined) return user;
  if (user === undefined) return (e) => rec.record(e);
  return (e) => {
    rec.record(e);
    user(e);
  };
}

export async function startTelemetry(p: {
  readonly opts: TelemetryOptions | false | undefined;
  readonly recorder: TelemetryRecorder | undefined;
  readonly addresses: readonly string[];
  readonly nodeId: string;
  readonly metadata: Record<string, unknown>;
  readonly log: Logger;
  readonly onTapsChanged?: (specs: readonly TapSpec[]) => void;
  /** The proxy's workload identity (admin /certs), reported with each summary. */
  readonly certs?: (() => CertsView) | undefined;
}): Promise<TelemetryClient | undefined> {
  const own = ownServiceOf(p.metadata);
  if (p.recorder === undefined || own === undefined || p.addresses.length === 0 || p.opts === false || p.opts?.stream === false) return undefined;
  const { startTelemetryClient } = await import('./telemetry-client.js');
  return startTelemetryClient({
    addresses: p.addresses, nodeId: p.nodeId, service: own.name, namespace: own.namespace, recorder: p.recorder, log: p.log,
    ...(p.opts?.intervalMs !== undefined ? { intervalMs: p.opts.intervalMs } : {}),
    ...(p.opts?.backoff !== undefined ? { backoff: p.opts.backoff } : {}),
    ...(p.opts?.credentials !== undefined ? { credentials: p.opts.credentials } : {}),
    ...(p.onTapsChanged !== undefined ? { onTapsChanged: p.onTapsChanged } : {}),
    ...(p.certs !== undefined ? { certificate: certificateOf(p.certs) } : {}),
  });
}

/** CertsView (admin /certs) → the wire's Certificate; undefined before the first SVID. */
export function certificateOf(certs: () => CertsView): () => CertificateWire | undefined {
  return () => {
    const v = certs();
    const c = v.certificate;
    if (v.spiffeId === undefined || c === undefined) return undefined;
    const next = v.renewal.nextAt === undefined ? undefined : Date.parse(v.renewal.nextAt);
    return {
      spiffe_id: v.spiffeId, serial_number: c.serialNumber, not_before_ms: Date.parse(c.notBefore), not_after_ms: Date.parse(c.notAfter),
      issuer: c.issuer, renewals: v.renewal.renewals, renewal_failures: v.renewal.failures,
      ...(next !== undefined && Number.isFinite(next) ? { next_renewal_ms: next } : {}),
      ...(v.renewal.lastError !== undefined ? { last_error: v.renewal.lastError } : {}),
      trust_bundle_roots: v.trustBundle.length,
    };
  };
}
