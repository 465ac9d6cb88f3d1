/** Writes out buffered access log lines and exports buffered spans (proxy close). */
import { flushAccessLogs } from './sinks.js';
import { flushTracing } from './tracing.js';

export async function flushObservability(): Promise<void> {
  await Promise.all([flushAccessLogs(), flushTracing()]);
}
