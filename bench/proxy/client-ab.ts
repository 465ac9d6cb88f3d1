/**
 * A/B of the upstream HTTP/1.1 client in a minimal proxy (children/mini-proxy.ts):
 * node:http Agent vs undici Pool, behind wrk, alternating A B A B … so that machine
 * noise hits both. Prints req/s per round and the median ratio undici/agent.
 *
 *   node dist/bench/proxy/client-ab.js [--rounds 3] [--duration 5]
 */
import { child, freePort, startProc, stopAll, waitReady, BODY_BYTES } from './common.js';
import { runWrk } from './wrk.js';

const argv = process.argv.slice(2);
const opt = (k: string, d: string): string => { const i = argv.indexOf(`--${k}`); return i === -1 ? d : argv[i + 1] ?? d; };
const rounds = Number(opt('rounds', '3'));
const durationS = Number(opt('duration', '5'));
try {
  const upPort = await freePort();
  const up = startProc('upstream', process.execPath, [child('upstream'), '--port', String(upPort)]);
  await waitReady(upPort, up, BODY_BYTES);
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const rps: Record<string, number> = {};
    for (const client of ['agent', 'undici']) {
      const port = await freePort();
      const p = startProc(`mini-${client}`, process.execPath, [child('mini-proxy'), '--port', String(port), '--upstream', String(upPort), '--client', client]);
      await waitReady(port, p, BODY_BYTES);
      await runWrk(port, { threads: 1, connections: 50, durationS: 2 });
      rps[client] = (await runWrk(port, { threads: 1, connections: 50, durationS })).rps;
      await p.stop();
    }
    ratios.push(rps.undici! / rps.agent!);
    console.log(`round ${r + 1}: agent ${Math.round(rps.agent!)} rps, undici ${Math.round(rps.undici!)} rps, undici/agent ${(rps.undici! / rps.agent!).toFixed(2)}`);
  }
  ratios.sort((a, b) => a - b);
  console.log(`median undici/agent: ${ratios[Math.floor(ratios.length / 2)]!.toFixed(2)}`);
} finally {
  await stopAll();
}
