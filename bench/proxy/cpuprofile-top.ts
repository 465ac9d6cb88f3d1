/**
 * Top self-time functions of a V8 .cpuprofile (as written by `node --cpu-prof`).
 * Self time = the samples whose top frame is the function, weighted by timeDeltas.
 *   node dist/bench/proxy/cpuprofile-top.js FILE.cpuprofile [N] [SKIP_MS]
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface CallFrame { functionName: string; url: string; lineNumber: number; columnNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

export interface HotSpot { name: string; where: string; selfMs: number; pctTotal: number; pctBusy: number }

const IDLE = new Set(['(idle)', '(program)']);

function shortUrl(url: string): string {
  if (url === '') return '';
  const u = url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('node_modules/');
  if (nm !== -1) return u.slice(nm + 'node_modules/'.length);
  const d = u.indexOf('/dist/');
  if (d !== -1) return u.slice(d + '/dist/'.length);
  return u.startsWith('node:') ? u : u.split('/').slice(-2).join('/');
}

/** `skipMs`: leave out samples in the first skipMs of the profile (start-up, warm-up). */
export interface Top { hot: HotSpot[]; totalMs: number; busyMs: number; idleMs: number; gcMs: number; byOrigin: Record<string, number> }

/** Where self time is spent: Weft's own code, Node's JS internals, npm packages, native (C++/syscalls: no URL), GC. */
function origin(name: string, url: string): string {
  if (name === '(garbage collector)') return 'GC';
  if (url === '') return 'native';
  if (url.startsWith('node:')) return 'node internals';
  if (url.includes('node_modules/')) return 'npm packages';
  if (url.includes('/src/')) return 'weft (src/)';
  return 'other';
}

export function topSelf(file: string, n = 10, skipMs = 0): Top {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const node of p.nodes) byId.set(node.id, node);
  const self = new Map<string, { name: string; where: string; us: number }>();
  const byOriginUs: Record<string, number> = {};
  let total = 0;
  let idle = 0;
  let gc = 0;
  let at = 0;
  for (let i = 0; i < p.samples.length; i++) {
    at += p.timeDeltas[i] ?? 0;
    if (at < skipMs * 1000) continue;
    const node = byId.get(p.samples[i]!);
    // timeDeltas[i] is the time before sample i; attribute the next delta to this sample.
    const dt = Math.max(0, p.timeDeltas[i + 1] ?? 0);
    if (node === undefined) continue;
    total += dt;
    const cf = node.callFrame;
    const name = cf.functionName === '' ? '(anonymous)' : cf.functionName;
    if (IDLE.has(name)) { idle += dt; continue; }
    if (name === '(garbage collector)') gc += dt;
    const o = origin(name, cf.url);
    byOriginUs[o] = (byOriginUs[o] ?? 0) + dt;
    const where = cf.url === '' ? '' : `${shortUrl(cf.url)}:${cf.lineNumber + 1}`;
    const key = `${name}@${where}`;
    const e = self.get(key) ?? { name, where, us: 0 };
    e.us += dt;
    self.set(key, e);
  }
  const busy = total - idle;
  const hot = [...self.values()].sort((x, y) => y.us - x.us).slice(0, n).map((e) => ({
    name: e.name, where: e.where, selfMs: e.us / 1000, pctTotal: (100 * e.us) / total, pctBusy: (100 * e.us) / busy,
  }));
  const byOrigin: Record<string, number> = {};
  for (const [k, v] of Object.entries(byOriginUs)) byOrigin[k] = (100 * v) / busy;
  return { hot, totalMs: total / 1000, busyMs: busy / 1000, idleMs: idle / 1000, gcMs: gc / 1000, byOrigin };
}

export function formatHot(r: Top): string {
  const origins = Object.entries(r.byOrigin).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v.toFixed(1)} %`).join(', ');
  const lines = [`profiled ${(r.totalMs / 1000).toFixed(1)} s: busy ${(100 * r.busyMs / r.totalMs).toFixed(1)} %, idle ${(100 * r.idleMs / r.totalMs).toFixed(1)} %, GC ${(100 * r.gcMs / r.busyMs).toFixed(1)} % of busy`,
    `self time of busy by origin: ${origins}`, '',
    '| # | function | where | self ms | % of busy | % of total |', '|---|---|---|---:|---:|---:|'];
  r.hot.forEach((h, i) => lines.push(`| ${i + 1} | \`${h.name}\` | ${h.where} | ${h.selfMs.toFixed(0)} | ${h.pctBusy.toFixed(1)} | ${h.pctTotal.toFixed(1)} |`));
  return lines.join('\n');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2];
  if (file === undefined) {
    console.error('usage: cpuprofile-top FILE.cpuprofile [N]');
    process.exit(2);
  }
  console.log(formatHot(topSelf(file, Number(process.argv[3] ?? '10'), Number(process.argv[4] ?? '0'))));
}
