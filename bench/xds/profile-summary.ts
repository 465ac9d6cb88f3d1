/**
 * Reads a V8 .cpuprofile (from `node --cpu-prof`) and lists where the time went:
 * self time per function, and self time per file/package, top N.
 * Usage: node dist/bench/xds/profile-summary.js FILE.cpuprofile [N]
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileRow {
  name: string;
  ms: number;
  pct: number;
}

function shortUrl(url: string): string {
  if (url === '') return '(native)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  const d = url.indexOf('/dist/');
  if (d >= 0) return url.slice(d + 6);
  return url.replace(/^file:\/\//, '');
}

export function summarize(file: string, top = 25): { total: number; byFunction: ProfileRow[]; byFile: ProfileRow[] } {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i] as number;
    self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const fn = new Map<string, number>();
  const files = new Map<string, number>();
  let total = 0;
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (!n) continue;
    const cf = n.callFrame;
    if (cf.functionName === '(idle)' || cf.functionName === '(program)') continue;
    total += us;
    const f = shortUrl(cf.url);
    const key = `${cf.functionName || '(anonymous)'} ${f}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
    fn.set(key, (fn.get(key) ?? 0) + us);
    files.set(f, (files.get(f) ?? 0) + us);
  }
  const rows = (m: Map<string, number>): ProfileRow[] =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: Math.round(us / 1000), pct: Math.round((1000 * us) / Math.max(1, total)) / 10 }));
  return { total: Math.round(total / 1000), byFunction: rows(fn), byFile: rows(files) };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: profile-summary FILE.cpuprofile [N]');
    process.exit(2);
  }
  const s = summarize(file, Number(process.argv[3] ?? 25));
  console.log(`busy (non-idle) CPU in profile: ${s.total} ms`);
  console.log('\nself time by file/package:');
  for (const r of s.byFile) console.log(`  ${String(r.ms).padStart(7)} ms ${String(r.pct).padStart(5)}%  ${r.name}`);
  console.log('\nself time by function:');
  for (const r of s.byFunction) console.log(`  ${String(r.ms).padStart(7)} ms ${String(r.pct).padStart(5)}%  ${r.name}`);
}
