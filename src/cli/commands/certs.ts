/**
 * `weft certs [PROXY]`: the workload certificate each proxy holds — its SPIFFE ID,
 * serial, validity and renewal state — as the proxy reported it with its last telemetry
 * summary (src/control/telemetry/hub.ts). Keys never leave the proxy; neither does
 * anything here but public facts about the certificate.
 */
import { Option, type Command } from 'commander';
import type { ProxyInfo as HubProxyInfo } from '../../control/telemetry/hub.js';
import { WeftError } from '../../lib/errors.js';
import { clientFor } from '../context.js';
import { humanDuration, renderTable, toJson, toYaml } from '../output.js';

/** GET /apis/telemetry/v1/proxies, as the control plane writes it. */
type ProxyInfo = Pick<HubProxyInfo, 'id' | 'service' | 'lastSummaryAt' | 'certificate'>;

const FORMATS = ['table', 'json', 'yaml'] as const;

/** An exact id, else the proxies whose id contains `want` (one expected). */
export function selectProxies(all: readonly ProxyInfo[], want: string | undefined): ProxyInfo[] {
  if (want === undefined) return [...all];
  const exact = all.filter((p) => p.id === want);
  if (exact.length > 0) return exact;
  const some = all.filter((p) => p.id.includes(want));
  if (some.length === 0) throw new WeftError('WEFT_ERR_NOT_FOUND', `no proxy connected to this control plane matches "${want}" (connected: ${all.map((p) => p.id).join(', ') || 'none'})`);
  if (some.length > 1) throw new WeftError('WEFT_ERR_USAGE', `"${want}" matches ${some.length} proxies: ${some.map((p) => p.id).join(', ')}; give more of the id`);
  return some;
}

export function certsTable(items: readonly ProxyInfo[], now: number): string {
  return renderTable(['PROXY', 'SPIFFE ID', 'SERIAL', 'EXPIRES IN', 'RENEWALS', 'NEXT RENEWAL', 'ROOTS'], items.map((p) => {
    const c = p.certificate;
    if (c === undefined) return [p.id, '(no certificate)', '-', '-', '-', '-', '-'];
    const left = Date.parse(c.notAfter) - now;
    const next = c.nextRenewalAt === undefined ? '-' : `in ${humanDuration(Math.max(0, Date.parse(c.nextRenewalAt) - now))}`;
    return [p.id, c.spiffeId, c.serialNumber.slice(0, 16), left > 0 ? humanDuration(left) : 'EXPIRED', `${c.renewals}${c.renewalFailures > 0 ? ` (${c.renewalFailures} failed)` : ''}`, next, String(c.trustBundleRoots)];
  }));
}

export function registerCerts(program: Command): void {
  program
    .command('certs')
    .description('the workload certificate each proxy holds: SPIFFE ID, serial, expiry, renewals')
    .argument('[proxy]', 'a proxy id, or part of one (default: every proxy)')
    .addOption(new Option('-o, --output <format>', 'output format').choices(FORMATS).default('table'))
    .addHelpText('after', `
The proxies report their certificate with each telemetry summary (every 5 s) to the
control-plane replica they are connected to. A proxy without a join token holds none.`)
    .action(async (proxy: string | undefined, opts: { output: (typeof FORMATS)[number] }, cmd: Command) => {
      const client = clientFor(cmd);
      const { items } = await client.json<{ items: ProxyInfo[] }>('GET', '/apis/telemetry/v1/proxies');
      const chosen = selectProxies(items, proxy);
      const out = opts.output === 'json' ? toJson(proxy === undefined ? chosen : chosen[0]) : opts.output === 'yaml' ? toYaml(proxy === undefined ? chosen : chosen[0]) : certsTable(chosen, Date.now());
      process.stdout.write(out.endsWith('\n') ? out : `${out}\n`);
    });
}
