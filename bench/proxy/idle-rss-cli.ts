/**
 * Idle RSS of `weft proxy --concurrency 1` as users run it: connected to a real
 * `weft control` (temp data dir, free ports), registered, first config applied.
 * Starts the control plane once, then `--runs` fresh proxies one after another; each
 * is measured (VmRSS from /proc) after its ready line plus a settle time. Linux only.
 *
 *   node dist/bench/proxy/idle-rss-cli.js [--runs N] [--settle-ms MS]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep, startProc, stopAll, type Proc } from './common.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? 0 : Number(m[1]) * 1024;
}

/** Resolves with the first stdout line matching `re` (the process's ready line). */
function lineOf(p: Proc, re: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${p.name}: no ready line in ${timeoutMs} ms: ${p.output()}`)), timeoutMs);
    p.cp.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = re.exec(buf);
      if (m !== null) { clearTimeout(timer); resolve(m); }
    });
    void p.exited.then((code) => { clearTimeout(timer); reject(new Error(`${p.name} exited (${String(code)}): ${p.output()}`)); });
  });
}

const argv = process.argv.slice(2);
const opt = (k: string, d: string): string => { const i = argv.indexOf(`--${k}`); return i === -1 ? d : argv[i + 1] ?? d; };
const runs = Number(opt('runs', '5'));
const settleMs = Number(opt('settle-ms', '2000'));
const dir = await mkdtemp(join(tmpdir(), 'weft-idle-rss-'));
const out: number[] = [];
try {
  const env = { ...process.env, WEFT_LOG_LEVEL: 'warn' };
  const cp = startProc('control', process.execPath, [CLI, 'control', '--data-dir', dir, '--api-addr', '127.0.0.1:0', '--xds-addr', '127.0.0.1:0', '--xds-tls-addr', 'none'], { env });
  const [, api, xds] = await lineOf(cp, /weft control ready: api=(\S+) xds=(\S+)/, 30_000);
  for (let i = 0; i < runs; i++) {
    const p = startProc('proxy', process.execPath, [CLI, 'proxy', '--server', api!, '--xds', xds!, '--service', 'idle', '--namespace', 'default',
      '--node-id', `sidecar~127.0.0.1~idle.default~${i}`, '--admin-addr', '127.0.0.1:0', '--outbound-addr', '127.0.0.1:0', '--inbound-addr', '127.0.0.1:0', '--concurrency', '1'], { env });
    await lineOf(p, /weft proxy ready: /, 30_000);
    await sleep(settleMs); // lazy inits, first GC
    out.push(rssOf(p.pid));
    await p.stop();
  }
} finally {
  await stopAll();
  await rm(dir, { recursive: true, force: true });
}
out.sort((a, b) => a - b);
const mb = (b: number): string => (b / 1048576).toFixed(1);
console.log(`idle VmRSS (weft proxy --concurrency 1, connected to weft control): median ${mb(out[Math.floor(out.length / 2)]!)} MB; all: ${out.map(mb).join(', ')} MB`);
