/**
 * A bounded open-loop load generator (wrk2 is not installed): sends GET / at a fixed
 * rate for a fixed time over a keep-alive pool, whatever the latency, and measures
 * each request from its *scheduled* send time to the end of its response (so a
 * stall counts for every request it delays: no coordinated omission). Also records
 * the service time (actual send → end). Prints one JSON line and exits.
 *   node open-loop.js --port P --rate 1000 --duration 10 [--warmup 1] [--max-sockets 64]
 */
import { Agent, request } from 'node:http';
import { HOST } from '../common.js';
import { args } from './watchdog.js';

const a = args();
const port = Number(a.port);
const rate = Number(a.rate ?? '1000');
const durationS = Number(a.duration ?? '10');
const warmupS = Number(a.warmup ?? '1');
const agent = new Agent({ keepAlive: true, maxSockets: Number(a['max-sockets'] ?? '64') });

// Exit on our own if the parent vanishes; never outlive duration + 30 s.
setTimeout(() => process.exit(3), (durationS + warmupS + 30) * 1000).unref();
const parent = process.ppid;
setInterval(() => { try { process.kill(parent, 0); } catch { process.exit(4); } }, 1000).unref();

const nowNs = (): bigint => process.hrtime.bigint();

interface Sample { sched: number; sent: number; done: number }

async function phase(seconds: number, record: boolean): Promise<{ samples: Sample[]; errors: number; late: number }> {
  const total = Math.round(rate * seconds);
  const interval = 1e9 / rate;
  const samples: Sample[] = [];
  let errors = 0;
  let outstanding = 0;
  let late = 0;
  const t0 = nowNs();
  return await new Promise((resolve) => {
    let i = 0;
    let finishedSending = false;
    const maybeDone = (): void => { if (finishedSending && outstanding === 0) resolve({ samples, errors, late }); };
    const fire = (schedNs: number): void => {
      outstanding++;
      const sent = Number(nowNs() - t0);
      if (sent - schedNs > 1e6) late++;
      const req = request({ host: HOST, port, path: '/', agent, headers: { host: 'bench.local' } }, (res) => {
        res.on('data', () => {});
        res.on('end', () => {
          outstanding--;
          if (res.statusCode !== 200) errors++;
          else if (record) samples.push({ sched: schedNs, sent, done: Number(nowNs() - t0) });
          maybeDone();
        });
      });
      req.setTimeout(5000, () => req.destroy(new Error('timeout')));
      req.on('error', () => { outstanding--; errors++; maybeDone(); });
      req.end();
    };
    const tick = (): void => {
      const elapsed = Number(nowNs() - t0);
      while (i < total && i * interval <= elapsed) { fire(i * interval); i++; }
      if (i < total) {
        const next = i * interval - Number(nowNs() - t0);
        setTimeout(tick, Math.max(0, Math.floor(next / 1e6)));
      } else {
        finishedSending = true;
        maybeDone();
      }
    };
    tick();
  });
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

if (warmupS > 0) await phase(warmupS, false);
const { samples, errors, late } = await phase(durationS, true);
const lat = samples.map((s) => (s.done - s.sched) / 1e6).sort((x, y) => x - y);
const svc = samples.map((s) => (s.done - s.sent) / 1e6).sort((x, y) => x - y);
const out = {
  rate, durationS, ok: samples.length, errors, lateSends: late,
  p50Ms: pct(lat, 50), p90Ms: pct(lat, 90), p99Ms: pct(lat, 99), maxMs: lat.at(-1) ?? Number.NaN,
  svcP50Ms: pct(svc, 50), svcP99Ms: pct(svc, 99),
};
process.stdout.write(JSON.stringify(out) + '\n');
agent.destroy();
process.exit(0);
