/**
 * `npm run bench:proxy`: Weft's proxy against peers on loopback (Weft issue 4).
 *
 *  1. closed loop (wrk, HTTP/1.1 keep-alive): the same upstream behind nothing,
 *     nginx, HAProxy, http-proxy, fastify/@fastify/http-proxy, Weft (1 worker, and
 *     2 node:cluster workers): requests/s, p50, p99; ratios to nginx and to the
 *     fastest Node proxy; Weft RSS idle and under load;
 *  2. open loop (our own generator, fixed 1,000 rps): latency added by one and by
 *     two Weft proxies in series (client side → server side → upstream) vs direct;
 *  3. a CPU profile of one Weft worker under wrk load: top self-time functions.
 *
 * Every peer is a child process on 127.0.0.1 with its config in a temp dir; all are
 * stopped at the end, on Ctrl-C and on errors; every load is bounded in time.
 *
 *   node dist/bench/proxy/proxy-bench.js [--duration S] [--connections C] [--threads T]
 *        [--only peer,peer,...] [--quick] [--upstream auto|node|nginx] [--rate RPS]
 *        [--no-profile] [--no-open-loop] [--write-results] [--note TEXT]
 * peers: direct, nginx, haproxy, http-proxy, fastify, weft, weft-x2; sections: open-loop, profile, h2.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { BODY_BYTES, child, HERE, installCleanup, rssBytes, sleep, startProc, stopAll, waitReady, freePort, which } from './common.js';
import { formatHot, topSelf } from './cpuprofile-top.js';
import { probeH2c } from './h2probe.js';
import { directPeer } from './peers/direct.js';
import { fastifyPeer } from './peers/fastify.js';
import { haproxyPeer } from './peers/haproxy.js';
import { httpProxyPeer } from './peers/http-proxy.js';
import { nginxPeer, startNginxUpstream } from './peers/nginx.js';
import type { Peer, RunningPeer } from './peers/types.js';
import { weftPeer } from './peers/weft.js';
import { runWrk, wrkCommand, wrkPath, type WrkResult } from './wrk.js';
import { h2loadPath, runH2load } from './h2load.js';

// ---------------------------------------------------------------- options

interface Options {
  durationS: number;
  connections: number;
  threads: number;
  only: Set<string> | undefined;
  upstream: 'auto' | 'node' | 'nginx';
  rate: number;
  profile: boolean;
  openLoop: boolean;
  writeResults: boolean;
  note: string | undefined;
  quick: boolean;
}

function parseOptions(argv: string[]): Options {
  const o: Options = { durationS: 10, connections: 50, threads: 1, only: undefined, upstream: 'auto', rate: 1000, profile: true, openLoop: true, writeResults: false, note: undefined, quick: false };
  let duration: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const num = (): number => {
      const n = Number(val());
      if (!Number.isFinite(n) || n <= 0) throw new Error(`${a} needs a positive number`);
      return n;
    };
    switch (a) {
      case '--duration': duration = num(); break;
      case '--connections': o.connections = Math.round(num()); break;
      case '--threads': o.threads = Math.round(num()); break;
      case '--only': o.only = new Set(val().split(',').map((s) => s.trim()).filter((s) => s !== '')); break;
      case '--quick': o.quick = true; break;
      case '--upstream': {
        const v = val();
        if (v !== 'auto' && v !== 'node' && v !== 'nginx') throw new Error('--upstream: auto, node or nginx');
        o.upstream = v;
        break;
      }
      case '--rate': o.rate = Math.round(num()); break;
      case '--no-profile': o.profile = false; break;
      case '--no-open-loop': o.openLoop = false; break;
      case '--write-results': o.writeResults = true; break;
      case '--note': o.note = val(); break;
      case '-h': case '--help':
        console.log(readFileSync(new URL(import.meta.url), 'utf8').split('*/')[0]);
        process.exit(0);
        break;
      default: throw new Error(`unknown option ${a} (see --help)`);
    }
  }
  o.durationS = duration ?? (o.quick ? 3 : 10);
  return o;
}

const PEER_NAMES = ['direct', 'nginx', 'haproxy', 'http-proxy', 'fastify', 'weft', 'weft-x2'];
const SECTIONS = ['open-loop', 'profile', 'h2'];

function wantsPeer(o: Options, name: string): boolean {
  return o.only === undefined || o.only.has(name);
}
function wantsSection(o: Options, name: string): boolean {
  if (name === 'profile' && !o.profile) return false;
  if (name === 'open-loop' && !o.openLoop) return false;
  return o.only === undefined || o.only.has(name) || o.only.has('weft');
}

// ---------------------------------------------------------------- formatting

const f1 = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(1));
const f2 = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(2));
const f3 = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(3));
const mb = (b: number | undefined): string => (b === undefined ? '–' : (b / 1048576).toFixed(1));
const int = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '–' : Math.round(n).toLocaleString('en-US'));

function mdTable(head: string[], rows: string[][], align: ('l' | 'r')[]): string {
  const sep = align.map((x) => (x === 'r' ? '---:' : '---'));
  return [head, sep, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

function textTable(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ');
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

// ---------------------------------------------------------------- measurements

interface Row {
  peer: Peer;
  skipped?: string;
  wrk?: WrkResult;
  rssIdle?: number;
  rssLoadMax?: number;
  processes?: number;
}

/** Samples the summed VmRSS of a peer's processes every 250 ms until stopped; returns the max. */
function sampleRss(p: RunningPeer): { stop(): number | undefined } {
  let max: number | undefined;
  const take = (): void => {
    const pids = p.pids();
    if (pids.length === 0) return;
    let sum = 0;
    for (const pid of pids) sum += rssBytes(pid) ?? 0;
    if (max === undefined || sum > max) max = sum;
  };
  const t = setInterval(take, 250);
  return { stop: () => { clearInterval(t); take(); return max; } };
}

function rssNow(p: RunningPeer): number | undefined {
  const pids = p.pids();
  if (pids.length === 0) return undefined;
  return pids.reduce((s, pid) => s + (rssBytes(pid) ?? 0), 0);
}

interface OpenLoopResult { rate: number; durationS: number; ok: number; errors: number; lateSends: number; p50Ms: number; p90Ms: number; p99Ms: number; maxMs: number; svcP50Ms: number; svcP99Ms: number }

async function openLoop(port: number, rate: number, durationS: number, warmupS: number): Promise<OpenLoopResult> {
  const proc = startProc('open-loop', process.execPath, [child('open-loop'), '--port', String(port), '--rate', String(rate), '--duration', String(durationS), '--warmup', String(warmupS)]);
  const code = await Promise.race([proc.exited, sleep((durationS + warmupS + 40) * 1000).then(() => 'timeout' as const)]);
  await proc.stop();
  if (code !== 0) throw new Error(`open-loop generator failed (${String(code)}):\n${proc.output()}`);
  const line = proc.output().trim().split('\n').at(-1) ?? '';
  return JSON.parse(line) as OpenLoopResult;
}

function runQuiet(cmd: string, args: string[]): Promise<string> {
  return new Promise((r) => execFile(cmd, args, { timeout: 5000 }, (_e, out, err) => r(`${out}${err}`.trim())));
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  installCleanup();
  const o = parseOptions(process.argv.slice(2));
  for (const n of o.only ?? []) if (!PEER_NAMES.includes(n) && !SECTIONS.includes(n)) throw new Error(`--only: unknown name "${n}" (peers: ${PEER_NAMES.join(', ')}; sections: ${SECTIONS.join(', ')})`);
  const command = `npm run bench:proxy --${process.argv.slice(2).map((a) => (/^[\w.,=/-]+$/.test(a) ? ` ${a}` : ` '${a.replace(/'/g, `'\\''`)}'`)).join('')}`.replace(/ --$/, '');
  const warmS = o.quick ? 1 : 2;
  const wrkOpts = { threads: o.threads, connections: o.connections, durationS: o.durationS };
  const tmpRoot = mkdtempSync(join(tmpdir(), 'weft-bench-proxy-'));
  const tmp = (name: string): string => { const d = join(tmpRoot, name); mkdirSync(d, { recursive: true }); return d; };
  const machine = `${cpus().length} cores (${cpus()[0]?.model.trim() ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, node ${process.version}, ${process.platform}`;
  const tools = {
    nginx: which('nginx') === undefined ? 'missing' : (await runQuiet(which('nginx')!, ['-v'])).replace(/^nginx version: /, ''),
    haproxy: which('haproxy') === undefined ? 'missing' : (await runQuiet(which('haproxy')!, ['-v'])).split('\n')[0]!.replace(/ - https.*$/, ''),
    wrk: wrkPath() === undefined ? 'missing' : (await runQuiet(wrkPath()!, ['--version'])).split('\n')[0]!.replace(/ Copyright.*$/, ''),
    h2load: which('h2load') === undefined ? 'missing' : (await runQuiet(which('h2load')!, ['--version'])),
  };
  console.log(`weft proxy benchmark — ${machine}`);
  console.log(`tools: ${Object.entries(tools).map(([k, v]) => `${k}: ${v}`).join('; ')}`);
  console.log(`load: ${o.durationS} s per peer after ${warmS} s warm-up, wrk -t${o.threads} -c${o.connections}; temp dir ${tmpRoot}\n`);

  const notes: string[] = [];
  const md: string[] = [];
  try {
    // ---- upstream
    let upstream: RunningPeer | undefined;
    let upstreamDesc = '';
    const nodeUp = async (): Promise<RunningPeer> => {
      const port = await freePort();
      const proc = startProc('upstream-node', process.execPath, [child('upstream'), '--port', String(port)]);
      await waitReady(port, proc, BODY_BYTES);
      return { port, procs: [proc], pids: () => [proc.pid], stop: () => proc.stop() };
    };
    const canNginxUp = which('nginx') !== undefined;
    if (o.upstream === 'nginx' && !canNginxUp) throw new Error('--upstream nginx: nginx is not installed');
    if (o.upstream === 'auto' && canNginxUp && wrkPath() !== undefined) {
      const probeS = Math.min(3, o.durationS);
      const [a, b] = [await nodeUp(), await startNginxUpstream(tmp('upstream-nginx'))];
      const ra = await runWrk(a.port, { ...wrkOpts, durationS: probeS });
      const rb = await runWrk(b.port, { ...wrkOpts, durationS: probeS });
      const nginxWins = rb.rps >= ra.rps;
      upstream = nginxWins ? b : a;
      await (nginxWins ? a : b).stop();
      upstreamDesc = `${nginxWins ? 'nginx serving a static 1 KB file (1 worker, sendfile)' : 'node:http answering a 1 KB body'} — picked as the faster of the two (direct, ${probeS} s: node:http ${int(ra.rps)} rps, nginx static ${int(rb.rps)} rps)`;
    } else if (o.upstream === 'nginx') {
      upstream = await startNginxUpstream(tmp('upstream-nginx'));
      upstreamDesc = 'nginx serving a static 1 KB file (1 worker, sendfile) (--upstream nginx)';
    } else {
      upstream = await nodeUp();
      upstreamDesc = `node:http answering a 1 KB body, keep-alive${o.upstream === 'auto' ? ' (nginx or wrk missing: no comparison)' : ' (--upstream node)'}`;
    }
    console.log(`upstream: ${upstreamDesc}\n`);
    const upstreamPort = upstream.port;

    // ---- closed loop
    const peers: Peer[] = [directPeer, nginxPeer, haproxyPeer, httpProxyPeer, fastifyPeer, weftPeer(1), weftPeer(2)];
    const rows: Row[] = [];
    const wrkMissing = wrkPath() === undefined ? 'wrk is not installed (apt-get install wrk): no closed-loop figures' : undefined;
    if (wrkMissing !== undefined) console.log(`SKIP closed loop: ${wrkMissing}`);
    for (const peer of peers) {
      const key = peer.name.replace(' ', '-');
      if (!wantsPeer(o, key)) continue;
      const why = wrkMissing ?? peer.missing();
      if (why !== undefined) {
        console.log(`SKIP ${peer.name}: ${why}`);
        rows.push({ peer, skipped: why });
        continue;
      }
      process.stdout.write(`${peer.name.padEnd(11)} … `);
      let running: RunningPeer | undefined;
      try {
        running = await peer.start({ upstreamPort, tmp: tmp(key) });
        const row: Row = { peer };
        await sleep(300);
        row.rssIdle = rssNow(running);
        row.processes = running.pids().length;
        await runWrk(running.port, { ...wrkOpts, durationS: warmS });
        const rss = sampleRss(running);
        row.wrk = await runWrk(running.port, wrkOpts);
        row.rssLoadMax = rss.stop();
        rows.push(row);
        const err = row.wrk.non2xx + row.wrk.socketErrors;
        console.log(`${int(row.wrk.rps)} rps, p50 ${f2(row.wrk.p50Ms)} ms, p99 ${f2(row.wrk.p99Ms)} ms${err > 0 ? `, ${err} errors` : ''}`);
      } catch (e) {
        const lines = (e as Error).message.split('\n').map((l) => l.trim()).filter((l) => l !== '');
        const msg = [lines[0], ...lines.slice(1).slice(-2)].join(' / ');
        console.log(`FAILED: ${msg}`);
        rows.push({ peer, skipped: `failed: ${msg}` });
      } finally {
        await running?.stop();
      }
    }

    // ---- HTTP/2 downstream (h2load), only when the Weft listener speaks h2c
    let h2Note = '';
    const h2Rows: string[][] = [];
    const h2Opts = { connections: Math.max(1, Math.min(o.connections, 10)), streams: 10, durationS: o.durationS, warmS };
    if (wantsPeer(o, 'weft') || wantsSection(o, 'h2')) {
      const w = await weftPeer(1).start({ upstreamPort, tmp: tmp('weft-h2probe') });
      let probe: { ok: boolean; answer: string };
      try {
        probe = await probeH2c(w.port);
      } finally {
        await w.stop();
      }
      if (!probe.ok) {
        h2Note = `h2load skipped: the Weft listener does not speak HTTP/2 downstream (an h2c prior-knowledge preface is answered with ${probe.answer})`;
      } else if (h2loadPath() === undefined) {
        h2Note = 'h2load skipped: h2load is not installed (apt-get install nghttp2-client)';
      } else {
        h2Note = `h2load -t1 -c${h2Opts.connections} -m${h2Opts.streams} -D ${h2Opts.durationS} --warm-up-time=${warmS} (h2c, prior knowledge); Node peers are left out (no h2c downstream in http-proxy / @fastify/http-proxy as configured)`;
        console.log(`\nHTTP/2: ${h2Note}`);
        for (const peer of [nginxPeer, haproxyPeer, weftPeer(1)]) {
          const why = peer.missing();
          if (why !== undefined) { h2Rows.push([peer.name, `skipped: ${why}`, '', '', '', '']); continue; }
          let running: RunningPeer | undefined;
          try {
            running = await peer.start({ upstreamPort, tmp: tmp(`h2-${peer.name}`), h2: true });
            const r = await runH2load(running.h2Port ?? running.port, h2Opts);
            h2Rows.push([peer.name, int(r.rps), f2(r.meanMs), f1(r.maxMs), String(r.failed), '']);
            console.log(`  ${peer.name.padEnd(9)} ${int(r.rps)} rps, mean ${f2(r.meanMs)} ms, ${r.failed} failed`);
          } catch (e) {
            const msg = (e as Error).message.split('\n')[0]!;
            console.log(`  ${peer.name.padEnd(9)} FAILED: ${msg}`);
            h2Rows.push([peer.name, `failed: ${msg}`, '', '', '', '']);
          } finally {
            await running?.stop();
          }
        }
        const ng = Number((h2Rows.find((r) => r[0] === 'nginx')?.[1] ?? '').replace(/,/g, ''));
        for (const r of h2Rows) { const v = Number(r[1]!.replace(/,/g, '')); r[5] = Number.isFinite(v) && ng > 0 ? f2(v / ng) : '–'; }
      }
      if (h2Rows.length === 0) console.log(`\nHTTP/2: ${h2Note}`);
    }

    // ---- table
    const ok = rows.filter((r) => r.wrk !== undefined);
    const nginxRps = ok.find((r) => r.peer.name === 'nginx')?.wrk?.rps;
    const nodeRows = ok.filter((r) => r.peer.kind === 'node');
    const fastestNode = nodeRows.sort((x, y) => y.wrk!.rps - x.wrk!.rps)[0];
    const head = ['peer', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'errors', '× nginx', `× fastest node (${fastestNode?.peer.name ?? '–'})`, 'RSS idle MB', 'RSS load MB'];
    const tableRows = rows.map((r) => {
      if (r.wrk === undefined) return [r.peer.name, `skipped: ${r.skipped ?? ''}`, '', '', '', '', '', '', '', ''];
      const w = r.wrk;
      const showRss = r.peer.kind !== 'none';
      return [r.peer.name, int(w.rps), f2(w.p50Ms), f2(w.p99Ms), f1(w.maxMs), String(w.non2xx + w.socketErrors),
        nginxRps === undefined ? '–' : f2(w.rps / nginxRps), fastestNode === undefined ? '–' : f2(w.rps / fastestNode.wrk!.rps),
        showRss ? mb(r.rssIdle) : '', showRss ? mb(r.rssLoadMax) : ''];
    });
    if (rows.length > 0) {
      console.log(`\nclosed loop: ${wrkCommand('PORT', wrkOpts)} (after a ${warmS} s warm-up)\n`);
      console.log(textTable(head, tableRows));
    }

    // ---- open loop: direct vs one vs two Weft proxies in series
    let ol: { direct?: OpenLoopResult; one?: OpenLoopResult; two?: OpenLoopResult; rssA?: number; rssB?: number } | undefined;
    if (wantsSection(o, 'open-loop')) {
      console.log(`\nopen loop: ${o.rate} req/s for ${o.durationS} s (after ${warmS} s warm-up), latency from the scheduled send time`);
      const server = await weftPeer(1).start({ upstreamPort, tmp: tmp('weft-server-side') });
      const client = await weftPeer(1).start({ upstreamPort: server.port, tmp: tmp('weft-client-side') });
      try {
        ol = {};
        ol.direct = await openLoop(upstreamPort, o.rate, o.durationS, warmS);
        ol.one = await openLoop(server.port, o.rate, o.durationS, warmS);
        const rssA = sampleRss(client);
        const rssB = sampleRss(server);
        ol.two = await openLoop(client.port, o.rate, o.durationS, warmS);
        ol.rssA = rssA.stop();
        ol.rssB = rssB.stop();
      } finally {
        await client.stop();
        await server.stop();
      }
      const olRows = ([['direct', ol.direct], ['1 weft', ol.one], ['2 weft in series', ol.two]] as const).map(([n, r]) => [
        n, int(r?.ok), String((r?.errors ?? 0)), f3(r?.p50Ms), f3(r?.p99Ms), f1(r?.maxMs),
        n === 'direct' ? '' : f3((r?.p50Ms ?? NaN) - (ol!.direct?.p50Ms ?? NaN)), n === 'direct' ? '' : f3((r?.p99Ms ?? NaN) - (ol!.direct?.p99Ms ?? NaN)),
        f3(r?.svcP50Ms), f3(r?.svcP99Ms), int(r?.lateSends)]);
      console.log(textTable(['path', 'ok', 'errors', 'p50 ms', 'p99 ms', 'max ms', '+p50 ms', '+p99 ms', 'svc p50', 'svc p99', 'late sends'], olRows));
      md.push('', `### Open loop: latency added at ${o.rate} req/s`, '',
        `Our own bounded open-loop generator (\`bench/proxy/children/open-loop.ts\`, wrk2 is not installed; \`h2load --rate\` paces connections, not requests): GET / at a fixed ${o.rate} req/s for ${o.durationS} s after a ${warmS} s warm-up, node:http keep-alive pool; latency from each request's *scheduled* send time to the end of its response (no coordinated omission). "svc" is from the actual send. Two Weft proxies in series: client → weft (client side) → weft (server side) → upstream.`, '',
        mdTable(['path', 'ok', 'errors', 'p50 ms', 'p99 ms', 'max ms', 'added p50 ms', 'added p99 ms', 'svc p50 ms', 'svc p99 ms'], olRows.map((r) => r.slice(0, 10)), ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r']),
        '', `RSS under this load: client-side weft ${mb(ol.rssA)} MB, server-side weft ${mb(ol.rssB)} MB.`);
    }

    // ---- profile
    let profileMd = '';
    if (wantsSection(o, 'profile') && wrkPath() !== undefined) {
      console.log(`\nprofile: node --cpu-prof, one Weft worker under wrk -t${o.threads} -c${o.connections} for ${o.durationS} s`);
      const profDir = tmp('cpuprofile');
      const spawnedAt = Date.now();
      let loadAt = spawnedAt;
      const w = await weftPeer(1).start({ upstreamPort, tmp: tmp('weft-profile'), nodeFlags: ['--cpu-prof', '--cpu-prof-dir', profDir] });
      let r: WrkResult | undefined;
      try {
        await runWrk(w.port, { ...wrkOpts, durationS: warmS });
        loadAt = Date.now();
        r = await runWrk(w.port, wrkOpts);
      } finally {
        await w.stop();
      }
      const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
      if (files.length === 0) {
        notes.push('the CPU profile was not written (the child did not exit cleanly)');
        console.log('  no .cpuprofile written');
      } else {
        const keep = join(tmpdir(), `weft-proxy-${Date.now()}.cpuprofile`);
        copyFileSync(join(profDir, files[0]!), keep);
        // Only the measured wrk run: skip start-up (module loading, compile) and the warm-up.
        const top = topSelf(keep, 10, loadAt - spawnedAt);
        const text = formatHot(top);
        console.log(`  (${int(r?.rps)} rps while profiled) profile kept at ${keep}\n${text}`);
        profileMd = ['', '### CPU profile of one Weft worker under wrk load', '',
          `\`node --cpu-prof\`, ${o.durationS} s of \`wrk -t${o.threads} -c${o.connections}\` (${int(r?.rps)} req/s while profiled; samples from start-up and the warm-up are left out); self time by function (\`node dist/bench/proxy/cpuprofile-top.js FILE\`).`, '', text].join('\n');
      }
    }

    // ---- targets
    const weft1 = ok.find((r) => r.peer.name === 'weft');
    const targets: [string, string, boolean | undefined][] = [];
    if (weft1 !== undefined && nginxRps !== undefined) {
      const x = weft1.wrk!.rps / nginxRps;
      targets.push(['1 weft worker ≥ 0.5× nginx req/s', `${f2(x)}×`, x >= 0.5]);
    }
    if (weft1 !== undefined && fastestNode !== undefined) {
      const x = weft1.wrk!.rps / fastestNode.wrk!.rps;
      targets.push([`≥ 1.5× the fastest Node proxy (${fastestNode.peer.name})`, `${f2(x)}×`, x >= 1.5]);
    }
    if (ol?.two !== undefined && ol.direct !== undefined) {
      const a50 = ol.two.p50Ms - ol.direct.p50Ms;
      const a99 = ol.two.p99Ms - ol.direct.p99Ms;
      targets.push([`2 proxies in series add ≤ 0.5 ms p50 at ${o.rate} rps`, `+${f3(a50)} ms`, a50 <= 0.5]);
      targets.push([`2 proxies in series add ≤ 2 ms p99 at ${o.rate} rps`, `+${f3(a99)} ms`, a99 <= 2]);
    }
    if (weft1?.rssIdle !== undefined) targets.push(['weft idle RSS ≤ 50 MB', `${mb(weft1.rssIdle)} MB`, weft1.rssIdle <= 50 * 1048576]);
    if (targets.length > 0) {
      console.log('\ntargets (Weft issue 4):');
      for (const [t, v, pass] of targets) console.log(`  ${pass === true ? 'PASS' : 'MISS'}  ${t}: ${v}`);
    }

    // ---- RESULTS.md
    const date = new Date().toISOString().slice(0, 10);
    const section = [
      '## Proxy', '',
      `Run on ${date}: \`${command}\` (\`node dist/bench/proxy/proxy-bench.js\` after \`npx tsc -p .\`).`, '',
      `Machine: ${machine}. Tools: ${Object.entries(tools).map(([k, v]) => `${k} ${v}`).join(', ')}.`,
      o.note === undefined ? '' : `\n**Note:** ${o.note}`, '',
      `Everything on 127.0.0.1 on the same ${cpus().length} cores: the load generator, the proxy and the upstream compete for CPU, so these are relative figures. Upstream: ${upstreamDesc}.`, '',
      '### Closed loop (wrk, HTTP/1.1 keep-alive)', '',
      `\`${wrkCommand('PORT', wrkOpts)}\` per peer, after a ${warmS} s warm-up. RSS = summed VmRSS of the peer's processes (/proc/PID/status), idle after start and max under load.`, '',
      mdTable(head, tableRows, ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r']), '',
      ...rows.filter((r) => r.wrk !== undefined || r.skipped !== undefined).map((r) => `- **${r.peer.name}**: ${r.peer.describe}${r.skipped !== undefined ? ` — skipped: ${r.skipped}` : ''}`),
      h2Note === '' ? '' : `\n### HTTP/2 downstream\n\n${h2Note}.`,
      h2Rows.length === 0 ? '' : `\n${mdTable(['peer', 'req/s', 'mean ms', 'max ms', 'failed', '× nginx'], h2Rows, ['l', 'r', 'r', 'r', 'r', 'r'])}\n\nh2load reports no percentiles, only min/max/mean per request.`,
      ...md,
      profileMd,
      '', '### Targets (Weft issue 4)', '',
      ...targets.map(([t, v, pass]) => `- ${pass === true ? '✅' : '❌'} ${t}: **${v}**`),
      ...notes.map((n) => `- note: ${n}`),
      '',
    ].filter((l, i, all) => !(l === '' && all[i - 1] === '')).join('\n');
    const out = join(tmpdir(), 'weft-bench-proxy-last.md');
    writeFileSync(out, section);
    console.log(`\nmarkdown section written to ${out}`);
    if (o.writeResults) {
      const file = resolve(HERE, '../../../bench/RESULTS.md');
      mergeSection(file, section);
      console.log(`merged into ${file}`);
    }
  } finally {
    await stopAll();
    rmSync(tmpRoot, { recursive: true, force: true });
  }
}

/** Replaces the `## Proxy` section of RESULTS.md (up to the next `## ` heading), or appends it; re-reads the file right before writing. */
function mergeSection(file: string, section: string): void {
  const cur = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmark results\n';
  const lines = cur.split('\n');
  const start = lines.findIndex((l) => /^## Proxy\s*$/.test(l));
  let next: string;
  if (start === -1) {
    next = `${cur.replace(/\n*$/, '')}\n\n${section.replace(/\n*$/, '')}\n`;
  } else {
    let end = lines.findIndex((l, i) => i > start && /^## /.test(l));
    if (end === -1) end = lines.length;
    const after = lines.slice(end).join('\n');
    next = `${lines.slice(0, start).join('\n').replace(/\n*$/, '')}\n\n${section.replace(/\n*$/, '')}\n${after === '' ? '' : `\n${after}`}`;
  }
  writeFileSync(file, next.replace(/^\n+/, ''));
}

main().then(() => process.exit(0), async (e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  await stopAll();
  process.exit(1);
});
