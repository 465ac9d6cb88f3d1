import { Option, type Command } from 'commander';
import { WeftError } from '../../lib/errors.js';
import { parseDuration } from '../../lib/duration.js';
import { clientFor } from '../context.js';
import { renderTable } from '../output.js';
import { fetchStats, ms, pct, rps, statTable, windowOption, type StatsResponse } from './stat.js';

interface TopOptions { namespace?: string; allNamespaces?: boolean; window: string; interval: string; iterations?: number }

/** The busiest Services, then the edges between Services. */
export function topView(r: StatsResponse, allNamespaces: boolean): string {
  const services = [...r.services].sort((a, b) => b.rps - a.rps || a.name.localeCompare(b.name));
  const edges = [...r.edges].sort((a, b) => b.rps - a.rps);
  const edgeRows = edges.map((e) => [
    `${e.source.name}.${e.source.namespace || '?'}`, `${e.destination.name}.${e.destination.namespace || '?'}`,
    rps(e.rps), pct(e.errorRate === null ? null : 1 - e.errorRate), ms(e.p99Ms), e.mtls ? 'yes' : 'no',
  ]);
  const head = `weft top — ${r.generatedAt} — window ${r.window}\n\n`;
  const svc = services.length === 0 ? 'No traffic found.\n' : statTable(services, allNamespaces);
  const ed = edgeRows.length === 0 ? '' : `\n${renderTable(['SOURCE', 'DESTINATION', 'RPS', 'SUCCESS', 'LATENCY_P99', 'MTLS'], edgeRows)}`;
  return head + svc + ed;
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new WeftError('WEFT_ERR_USAGE', `--iterations: want a positive integer, got "${v}"`);
  return n;
}

export function registerTop(program: Command): void {
  program
    .command('top')
    .description('live view of the busiest Services and edges (refreshing; one snapshot per interval when not a terminal)')
    .addOption(new Option('-n, --namespace <ns>', 'namespace (default: default)'))
    .option('-A, --all-namespaces', 'every namespace')
    .option('--window <duration>', 'time window of each view (1s to 15m)', windowOption, '60s')
    .option('--interval <duration>', 'time between refreshes', '2s')
    .option('--iterations <n>', 'stop after n views (default: until Ctrl-C)', positiveInt)
    .action(async (opts: TopOptions, cmd: Command) => {
      const intervalMs = parseDuration(opts.interval);
      if (intervalMs === undefined || intervalMs < 100) throw new WeftError('WEFT_ERR_USAGE', `--interval: want a duration of at least 100ms, got "${opts.interval}"`);
      const namespace = opts.allNamespaces === true ? undefined : (opts.namespace ?? 'default');
      const client = clientFor(cmd);
      const tty = process.stdout.isTTY === true;
      let stopped = false;
      let wake: (() => void) | undefined;
      const onSigint = (): void => { stopped = true; wake?.(); };
      process.once('SIGINT', onSigint);
      try {
        for (let i = 0; !stopped && (opts.iterations === undefined || i < opts.iterations); i++) {
          if (i > 0) {
            await new Promise<void>((r) => { wake = r; setTimeout(r, intervalMs); });
            if (stopped) break;
          }
          const view = topView(await fetchStats(client, { namespace, window: opts.window }), opts.allNamespaces === true);
          // A terminal gets a redrawn screen; a pipe gets one snapshot after another.
          process.stdout.write(tty ? `\x1b[H\x1b[2J${view}` : `${i > 0 ? '\n' : ''}${view}`);
        }
      } finally {
        process.off('SIGINT', onSigint);
      }
    });
}
