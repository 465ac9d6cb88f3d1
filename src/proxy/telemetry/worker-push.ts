/**
 * A proxy worker's side of telemetry: it counts its own requests in its recorder and
 * pushes the counters (every second) and tap events (every 100 ms while a tap runs)
 * to its primary over the node:cluster channel; the primary merges them into the
 * recorder its telemetry stream sends from. Per request nothing crosses processes.
 */
import type { FromWorker } from '../workers/protocol.js';
import { TelemetryRecorder } from './recorder.js';

const PUSH_MS = 1000;
const TAP_PUSH_MS = 100;

export interface WorkerTelemetry {
  readonly recorder: TelemetryRecorder;
  close(): void;
}

export function startWorkerTelemetry(own: { name: string; namespace: string } | undefined, send: (m: FromWorker) => void): WorkerTelemetry | undefined {
  if (own === undefined) return undefined;
  const recorder = new TelemetryRecorder(own);
  const push = (withSummary: boolean): void => {
    const tap = recorder.hasTapOutput ? recorder.takeTapEvents() : { events: [], dropped: [] };
    const summary = withSummary ? recorder.takeSummary() : { stats: [] };
    if ((summary.stats?.length ?? 0) === 0 && tap.events!.length === 0 && tap.dropped!.length === 0) return;
    send({ t: 'telemetry', summary, tap });
  };
  const summaryTimer = setInterval(() => push(true), PUSH_MS);
  summaryTimer.unref();
  const tapTimer = setInterval(() => { if (recorder.activeTaps > 0 || recorder.hasTapOutput) push(false); }, TAP_PUSH_MS);
  tapTimer.unref();
  return {
    recorder,
    close: () => {
      clearInterval(summaryTimer);
      clearInterval(tapTimer);
      push(true);
    },
  };
}
