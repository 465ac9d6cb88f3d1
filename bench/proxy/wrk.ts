/** Runs wrk (closed loop, HTTP/1.1 keep-alive) for a bounded time and parses its report. */
import { execFile } from 'node:child_process';
import { HOST, trackLoad, which } from './common.js';

export interface WrkResult {
  rps: number;
  requests: number;
  p50Ms: number;
  p75Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  non2xx: number;
  socketErrors: number;
}

function ms(v: string, unit: string): number {
  const n = Number(v);
  switch (unit) {
    case 'us': return n / 1000;
    case 'ms': return n;
    case 's': return n * 1000;
    case 'm': return n * 60_000;
    default: return Number.NaN;
  }
}

export function parseWrk(out: string): WrkResult {
  const pct = (p: string): number => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
    return m === null ? Number.NaN : ms(m[1]!, m[2]!);
  };
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(out);
  const reqs = /^\s+(\d+) requests in/m.exec(out);
  const max = /^\s+Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s|m)/m.exec(out);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  if (rps === null) throw new Error(`cannot parse wrk output:\n${out}`);
  return {
    rps: Number(rps[1]),
    requests: reqs === null ? 0 : Number(reqs[1]),
    p50Ms: pct('50'), p75Ms: pct('75'), p90Ms: pct('90'), p99Ms: pct('99'),
    maxMs: max === null ? Number.NaN : ms(max[1]!, max[2]!),
    non2xx: non2xx === null ? 0 : Number(non2xx[1]),
    socketErrors: se === null ? 0 : se.slice(1).reduce((s, x) => s + Number(x), 0),
  };
}

export const wrkPath = (): string | undefined => which('wrk');

/** wrk -t T -c C -d Ds --latency; killed if it overruns its duration by 15 s. */
export function runWrk(port: number, o: { threads: number; connections: number; durationS: number }): Promise<WrkResult> {
  const args = ['-t', String(o.threads), '-c', String(o.connections), '-d', `${o.durationS}s`, '--timeout', '5s', '--latency', '-H', 'Host: bench.local', `http://${HOST}:${port}/`];
  return new Promise((resolve, reject) => {
    trackLoad(execFile(wrkPath()!, args, { timeout: (o.durationS + 15) * 1000, killSignal: 'SIGKILL', maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err !== null) return reject(new Error(`wrk failed: ${err.message}\n${stdout}\n${stderr}`));
      try { resolve(parseWrk(stdout)); } catch (e) { reject(e as Error); }
    }));
  });
}

export function wrkCommand(port: number | string, o: { threads: number; connections: number; durationS: number }): string {
  return `wrk -t${o.threads} -c${o.connections} -d${o.durationS}s --timeout 5s --latency -H 'Host: bench.local' http://${HOST}:${port}/`;
}
