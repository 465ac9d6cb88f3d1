/** Runs h2load (HTTP/2 cleartext, prior knowledge) for a bounded time and parses its report. */
import { execFile } from 'node:child_process';
import { HOST, trackLoad, which } from './common.js';

export interface H2loadResult { rps: number; succeeded: number; failed: number; meanMs: number; maxMs: number }

function ms(v: string, unit: string): number {
  const n = Number(v);
  return unit === 'us' ? n / 1000 : unit === 'ms' ? n : unit === 's' ? n * 1000 : Number.NaN;
}

export function parseH2load(out: string): H2loadResult {
  const fin = /finished in [\d.]+\w*, ([\d.]+) req\/s/.exec(out);
  const req = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed/.exec(out);
  const t = /time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)/.exec(out);
  if (fin === null) throw new Error(`cannot parse h2load output:\n${out}`);
  const ok2xx = /status codes: (\d+) 2xx/.exec(out);
  if (ok2xx === null || Number(ok2xx[1]) === 0) throw new Error(`h2load: no 2xx answer: ${out.split('\n').filter((l) => /requests:|status codes:|error|fail/i.test(l)).join(' / ').slice(0, 400)}`);
  return {
    rps: Number(fin[1]),
    succeeded: req === null ? 0 : Number(req[1]),
    failed: req === null ? 0 : Number(req[2]),
    meanMs: t === null ? Number.NaN : ms(t[5]!, t[6]!),
    maxMs: t === null ? Number.NaN : ms(t[3]!, t[4]!),
  };
}

export const h2loadPath = (): string | undefined => which('h2load');

export function h2loadArgs(port: number | string, o: { connections: number; streams: number; durationS: number; warmS: number }): string[] {
  return ['-t', '1', '-c', String(o.connections), '-m', String(o.streams), '-D', String(o.durationS), `--warm-up-time=${o.warmS}`, `http://${HOST}:${port}/`];
}

export function runH2load(port: number, o: { connections: number; streams: number; durationS: number; warmS: number }): Promise<H2loadResult> {
  return new Promise((resolve, reject) => {
    trackLoad(execFile(h2loadPath()!, h2loadArgs(port, o), { timeout: (o.durationS + o.warmS + 15) * 1000, killSignal: 'SIGKILL', maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err !== null) return reject(new Error(`h2load failed: ${err.message}\n${stdout}\n${stderr}`));
      try { resolve(parseH2load(stdout)); } catch (e) { reject(e as Error); }
    }));
  });
}
