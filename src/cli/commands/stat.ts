import { Option, type Command } from 'commander';
import { WeftError } from '../../lib/errors.js';
import { parseDuration } from '../../lib/duration.js';
import type { ApiClient } from '../client.js';
import { clientFor } from '../context.js';
import { renderTable, toJson } from '../output.js';

/** GET /apis/telemetry/v1/stats (src/control/telemetry/golden.ts), as the CLI reads it. */
export interface RouteStats { name: string; rps: number; successRate: number | null; p50Ms: number | null; p95Ms: number | null; p99Ms: number | null }
export interface ServiceStats extends Omit<RouteStats, 'name'> { name: string; namespace: string; proxies: number; routes: RouteStats[] }
export interface EdgeStats { source: { name: string; namespace: string }; destination: { name: string; namespace: string }; rps: number; errorRate: number | null; p99Ms: number | null; mtls: boolean }
export interface StatsResponse { window: string; generatedAt: string; services: ServiceStats[]; edges: EdgeStats[] }

const FORMATS = ['table', 'json'] as const;

export function windowOption(v: string): string {
  const ms = parseDuration(v);
  if (ms === undefined || ms < 1000 || ms > 15 * 60_000) throw new WeftError('WEFT_ERR_USAGE', `--window: want a duration from 1s to 15m (e.g. 60s, 5m), got "${v}"`);
  return v;
}

export function fetchStats(client: ApiClient, q: { namespace?: string | undefined; window: string }): Promise<StatsResponse> {
  return client.json<StatsResponse>('GET', '/apis/telemetry/v1/stats', { query: { namespace: q.namespace, window: q.window } });
}

export const pct = (v: number | null): string => (v === null ? '-' : `${(v * 100).toFixed(2)}%`);
export const rps = (v: number): string => `${v < 10 ? v.toFixed(2) : v.toFixed(1)}rps`;
export const ms = (v: number | null): string => (v === null ? '-' : v < 10 ? `${v.toFixed(1)}ms` : `${Math.round(v)}ms`);

/** linkerd viz stat's columns: NAME, PROXIES (its MESHED), SUCCESS, RPS, LATENCY_P50/P95/P99. */
export function statTable(services: readonly ServiceStats[], allNamespaces: boolean): string {
  const headers = [...(allNamespaces ? ['NAMESPACE'] : []), 'NAME', 'PROXIES', 'SUCCESS', 'RPS', 'LATENCY_P50', 'LATENCY_P95', 'LATENCY_P99'];
  return renderTable(headers, services.map((s) => [
    ...(allNamespaces ? [s.namespace] : []), s.name, String(s.proxies), pct(s.successRate), rps(s.rps), ms(s.p50Ms), ms(s.p95Ms), ms(s.p99Ms),
  ]));
}

export function routesTable(services: readonly ServiceStats[], allNamespaces: boolean): string {
  const headers = [...(allNamespaces ? ['NAMESPACE'] : []), 'SERVICE', 'ROUTE', 'SUCCESS', 'RPS', 'LATENCY_P50', 'LATENCY_P95', 'LATENCY_P99'];
  const rows: string[][] = [];
  for (const s of services) {
    for (const r of s.routes) rows.push([...(allNamespaces ? [s.namespace] : []), s.name, r.name, pct(r.successRate), rps(r.rps), ms(r.p50Ms), ms(r.p95Ms), ms(r.p99Ms)]);
  }
  return renderTable(headers, rows);
}

interface StatOptions { namespace?: string; allNamespaces?: boolean; window: string; routes?: boolean; output: (typeof FORMATS)[number] }

export function registerStat(program: Command): void {
  program
    .command('stat')
    .description('golden metrics per Service from the proxies\' telemetry: requests/s, success rate, latency percentiles')
    .argument('[service]', 'one Service (default: every Service of the namespace)')
    .addOption(new Option('-n, --namespace <ns>', 'namespace (default: default)'))
    .option('-A, --all-namespaces', 'every namespace')
    .option('--window <duration>', 'time window (1s to 15m)', windowOption, '60s')
    .option('--routes', 'one line per route of each Service')
    .addOption(new Option('-o, --output <format>', 'output format').choices(FORMATS).default('table'))
    .addHelpText('after', `
Numbers come from the summaries the proxies connected to this control-plane replica send every 5 s;
a Service's own proxies (inbound) count when it has any, else its callers' outbound requests.`)
    .action(async (service: string | undefined, opts: StatOptions, cmd: Command) => {
      if (service === undefined && opts.allNamespaces !== true && opts.namespace === undefined) opts.namespace = 'default';
      if (service !== undefined && opts.allNamespaces === true) throw new WeftError('WEFT_ERR_USAGE', 'give a Service or -A, not both');
      const namespace = opts.allNamespaces === true ? undefined : (opts.namespace ?? 'default');
      const r = await fetchStats(clientFor(cmd), { namespace, window: opts.window });
      const services = service === undefined ? r.services : r.services.filter((s) => s.name === service);
      if (opts.output === 'json') {
        process.stdout.write(toJson({ ...r, services, edges: service === undefined ? r.edges : r.edges.filter((e) => e.source.name === service || e.destination.name === service) }));
        return;
      }
      if (services.length === 0) {
        process.stderr.write(service === undefined ? 'No traffic found.\n' : `No traffic found for ${service}.${namespace ?? ''} in the last ${opts.window}.\n`);
        return;
      }
      process.stdout.write(opts.routes === true ? routesTable(services, opts.allNamespaces === true) : statTable(services, opts.allNamespaces === true));
    });
}
