/**
 * Entry point of one proxy worker (forked by primary.ts through node:cluster). It runs
 * the data plane only: the bootstrap's static resources plus the dynamic ones the
 * primary sends (no ADS stream, no admin server), and answers the primary's stats,
 * drain and close requests. Listeners bound here are shared across workers by
 * node:cluster (the primary accepts and hands connections out round-robin).
 */
import { startProxy } from '../proxy.js';
import { reopenAccessLogs } from '../observability/sinks.js';
import { startWorkerTelemetry } from '../telemetry/worker-push.js';
import { APPLY_ORDER, hostCountersToWire, statsToWire, WORKER_OPTIONS_ENV, type FromWorker, type ToWorker, type WorkerOptions } from './protocol.js';

const send = (m: FromWorker, cb?: () => void): void => { process.send?.(m, undefined, {}, () => cb?.()); };
const wopts = JSON.parse(process.env[WORKER_OPTIONS_ENV] ?? '{}') as WorkerOptions;

// Signals are the primary's to handle (a terminal's Ctrl-C reaches the whole process
// group); a worker drains and exits when the primary says so, or when the primary is
// gone (its IPC channel closed: SIGKILL, crash): then busy connections get drainMs.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
// The primary passes logrotate's SIGUSR1 on: reopen access log files (a handler also keeps Node from starting its inspector).
process.on('SIGUSR1', reopenAccessLogs);
const held: { proxy?: Awaited<ReturnType<typeof startProxy>> } = {};
process.once('disconnect', () => {
  setTimeout(() => process.exit(0), (wopts.drainMs ?? 5000) + 1000).unref();
  const p = held.proxy;
  if (p === undefined) process.exit(0);
  else void p.drain().then(() => p.close()).finally(() => process.exit(0));
});

const telemetry = startWorkerTelemetry(wopts.telemetry, (m) => send(m));
const proxy = await startProxy({ ...wopts, xdsAddresses: [], admin: false, concurrency: 1, telemetry: telemetry === undefined ? false : { recorder: telemetry.recorder, stream: false } });
held.proxy = proxy;
proxy.stats.labels.setSelfPrincipal(wopts.principal);

function ports(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of proxy.snapshot().listeners.keys()) {
    const p = proxy.listenerPort(name);
    if (p !== undefined) out[name] = p;
  }
  return out;
}

process.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'config': {
      // All kinds are applied synchronously (applyResources compiles and swaps before its
      // first await), so no request sees half of an update; then wait for the binds.
      let error: string | undefined;
      const settled: Promise<void>[] = [];
      for (const kind of APPLY_ORDER) {
        try {
          settled.push(proxy.applyResources(kind, m.resources[kind], m.versions[kind], { full: true }).catch((e: unknown) => { error ??= String(e); }));
        } catch (e) {
          error ??= String(e);
        }
      }
      void Promise.all(settled).then(() => send({ t: 'applied', seq: m.seq, ports: ports(), ...(error === undefined ? {} : { error }) }));
      return;
    }
    case 'tls':
      return proxy.tlsMaterial.load(m.material);
    case 'taps':
      return telemetry?.recorder.setTaps(m.taps);
    case 'stats':
      return send({ t: 'stats', id: m.id, stats: statsToWire(proxy.stats), hosts: hostCountersToWire(proxy.snapshot()) });
    case 'drain':
      return void proxy.drain().finally(() => send({ t: 'done', id: m.id }));
    case 'close':
      telemetry?.close();
      return void proxy.close().finally(() => send({ t: 'done', id: m.id }, () => process.exit(0)));
  }
});
send({ t: 'up' });
