/**
 * Idle RSS of a Weft proxy with a static bootstrap (no xDS server): starts
 * `children/weft.js` in a fresh node, waits until its admin /ready answers 200, lets it
 * settle, and prints VmRSS from /proc (median of `--runs`, default 5). Linux only.
 *
 *   node dist/bench/proxy/idle-rss.js [--runs N] [--workers N]
 */
import { readFileSync } from 'node:fs';
import { child, freePort, sleep, startProc, stopAll } from './common.js';

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? 0 : Number(m[1]) * 1024;
}

function childPids(pid: number): number[] {
  try { return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter((s) => s !== '').map(Number); } catch { return []; }
}

async function ready(adminPort: number): Promise<boolean> {
  try { return (await fetch(`http://127.0.0.1:${adminPort}/ready`)).status === 200; } catch { return false; }
}

const argv = process.argv.slice(2);
const opt = (k: string, d: string): string => { const i = argv.indexOf(`--${k}`); return i === -1 ? d : argv[i + 1] ?? d; };
const runs = Number(opt('runs', '5'));
const workers = opt('workers', '1');
const out: number[] = [];
try {
  for (let i = 0; i < runs; i++) {
    const [port, admin] = [await freePort(), await freePort()];
    const p = startProc('weft', process.execPath, [child('weft'), '--port', String(port), '--upstream', '9', '--admin', String(admin), '--workers', workers]);
    const t0 = Date.now();
    while (!(await ready(admin))) {
      if (Date.now() - t0 > 15_000) throw new Error(`weft did not get ready: ${p.output()}`);
      await sleep(50);
    }
    await sleep(1000); // settle (lazy inits, first GC)
    const pids = [p.pid, ...childPids(p.pid)];
    out.push(pids.reduce((s, x) => s + rssOf(x), 0));
    await p.stop();
  }
} finally {
  await stopAll();
}
out.sort((a, b) => a - b);
const mb = (b: number): string => (b / 1048576).toFixed(1);
console.log(`idle VmRSS (static bootstrap, ${workers === '1' ? '1 process' : `primary + ${workers} workers`}): median ${mb(out[Math.floor(out.length / 2)]!)} MB; all: ${out.map(mb).join(', ')} MB`);
