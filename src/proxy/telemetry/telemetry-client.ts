/**
 * The proxy's end of the telemetry channel (docs/adr/0007-telemetry-channel.md): one
 * bidi gRPC stream to the control plane, on the xDS server's address and credentials.
 * Sends a Hello, then a Summary every `intervalMs` (and when asked with Flush), tap
 * events every `tapFlushMs` while a tap runs, and a Status when its tap count changes;
 * obeys TapStart / TapStop. Reconnects with jittered backoff across the addresses;
 * taps end with the stream (the control plane starts them again if it still wants them).
 *
 * Nothing here waits on the network per request: `write` on a stream whose buffer is
 * full still queues inside grpc-js, so while the stream is not writable summaries keep
 * accumulating in the recorder and tap events are dropped (counted) instead of sent.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../lib/log.js';
import { telemetryDefinitions, type CertificateWire, type ControlMessage, type ProxyMessage } from '../../telemetry/telemetry-proto.js';
import { createBackoff, type Backoff } from '../xds-client/backoff.js';
import { xdsChannelCredentials } from '../xds-client/ads-client.js';
import { tapSpecOf, type TapSpec, type TelemetryRecorder } from './recorder.js';

export const DEFAULT_INTERVAL_MS = 5000;
export const DEFAULT_TAP_FLUSH_MS = 200;

export interface TelemetryClientOptions {
  readonly addresses: readonly string[];
  readonly nodeId: string;
  readonly service: string;
  readonly namespace: string;
  readonly recorder: TelemetryRecorder;
  readonly log: Logger;
  readonly intervalMs?: number;
  readonly tapFlushMs?: number;
  readonly backoff?: Backoff;
  /** Called per connection attempt (certificates rotate); default the ADS client's (setXdsChannelCredentials), else plaintext. */
  readonly credentials?: () => grpc.ChannelCredentials;
  /** Called when the set of taps changes (the primary forwards it to its workers). */
  readonly onTapsChanged?: (specs: readonly TapSpec[]) => void;
  /** The workload certificate held now, sent with each summary (`weft certs`). */
  readonly certificate?: () => CertificateWire | undefined;
}

type Call = grpc.ClientDuplexStream<ProxyMessage, ControlMessage>;

export interface TelemetryClient {
  /** Sends a summary now (tests; shutdown). */
  flush(): void;
  readonly connected: boolean;
  close(): void;
}

export function startTelemetryClient(o: TelemetryClientOptions): TelemetryClient {
  const { Client } = telemetryDefinitions();
  const backoff = o.backoff ?? createBackoff();
  const intervalMs = o.intervalMs ?? DEFAULT_INTERVAL_MS;
  const rec = o.recorder;
  let index = 0;
  let client: grpc.Client | undefined;
  let call: Call | undefined;
  let connected = false;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;

  const send = (m: ProxyMessage): boolean => {
    if (call === undefined || !connected) return false;
    try {
      call.write(m);
      return true;
    } catch {
      return false;
    }
  };
  const tapsChanged = (): void => {
    o.onTapsChanged?.(rec.tapSpecs());
    send({ status: { active_taps: rec.activeTaps } });
  };
  const sendSummary = (): void => {
    if (!connected) return; // keep counting: the next summary covers the outage
    const certificate = o.certificate?.();
    send({ summary: certificate === undefined ? rec.takeSummary() : { ...rec.takeSummary(), certificate } });
  };
  const sendTapEvents = (): void => {
    if (!rec.hasTapOutput) return;
    const out = rec.takeTapEvents();
    // A stream that cannot take more keeps nothing for later: the events are dropped, counted.
    if (call !== undefined && connected && call.writableLength < 1024 * 1024) send({ tap_events: out });
  };

  const summaryTimer = setInterval(sendSummary, intervalMs);
  summaryTimer.unref();
  const tapTimer = setInterval(sendTapEvents, o.tapFlushMs ?? DEFAULT_TAP_FLUSH_MS);
  tapTimer.unref();

  const lost = (why: string): void => {
    if (call === undefined) return;
    call.removeAllListeners();
    call.on('error', () => {});
    call.cancel();
    call = undefined;
    client?.close();
    client = undefined;
    if (connected) o.log.debug({ why }, 'telemetry stream lost');
    connected = false;
    // Taps belong to the stream that started them.
    if (rec.activeTaps > 0) {
      for (const s of rec.tapSpecs()) rec.stopTap(s.id);
      o.onTapsChanged?.([]);
    }
    if (closed) return;
    index++;
    retry = setTimeout(connect, backoff.next());
    retry.unref();
  };

  const onMessage = (m: ControlMessage): void => {
    if (m.tap_start !== undefined) {
      const spec = tapSpecOf(m.tap_start);
      if (spec === undefined) return;
      rec.startTap(spec);
      tapsChanged();
    } else if (m.tap_stop !== undefined) {
      if (m.tap_stop.id !== undefined) rec.stopTap(m.tap_stop.id);
      sendTapEvents();
      tapsChanged();
    } else if (m.flush !== undefined) {
      sendSummary();
    }
  };

  function connect(): void {
    if (closed) return;
    const address = o.addresses[index % o.addresses.length]!;
    // The ADS stream's credentials (mTLS with the current SVID under --xds-tls), asked per connection.
    const creds = (o.credentials ?? xdsChannelCredentials())?.() ?? grpc.credentials.createInsecure();
    client = new Client(address, creds, { 'grpc.keepalive_time_ms': 30_000 });
    const c = (client as unknown as { Stream(): Call }).Stream();
    call = c;
    c.on('data', onMessage);
    // Up once the server answered with headers (it sends them at once): until then
    // summaries are not taken, so counts made during an outage go in the next one.
    c.on('metadata', () => {
      if (call !== c || connected) return;
      connected = true;
      backoff.reset();
      send({ status: { active_taps: rec.activeTaps } });
    });
    c.on('error', (e: Error) => { if (call === c) lost(e.message); });
    c.on('end', () => { if (call === c) lost('ended by the control plane'); });
    c.write({ hello: { node_id: o.nodeId, service: o.service, namespace: o.namespace, interval_ms: intervalMs } });
  }
  connect();

  return {
    flush: sendSummary,
    get connected() { return connected; },
    close: () => {
      if (closed) return;
      sendTapEvents();
      sendSummary();
      closed = true;
      clearInterval(summaryTimer);
      clearInterval(tapTimer);
      if (retry !== undefined) clearTimeout(retry);
      if (call !== undefined) {
        const c = call;
        call = undefined;
        c.removeAllListeners();
        c.on('error', () => {});
        c.end();
        // Let the last messages go out before the channel closes.
        setTimeout(() => { c.cancel(); client?.close(); }, 200).unref();
      }
      connected = false;
    },
  };
}
