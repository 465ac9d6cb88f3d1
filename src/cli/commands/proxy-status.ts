import { Option, type Command } from 'commander';
import type { ClientStatus, TypeShortName, TypeStatus } from '../../control/xds/ads-server.js';
import type { ApiClient } from '../client.js';
import { clientFor } from '../context.js';
import { humanDuration, renderTable, toJson, toYaml } from '../output.js';

const FORMATS = ['table', 'json', 'yaml'] as const;
type Format = (typeof FORMATS)[number];

/** Column order of istioctl proxy-status. */
const TYPES = ['CDS', 'LDS', 'EDS', 'RDS'] as const satisfies readonly TypeShortName[];
const NACK_CELL_MAX = 60;

export type XdsClient = ClientStatus;

export type SyncState =
  | { state: 'SYNCED'; version: string }
  | { state: 'STALE'; sent: string; acked?: string }
  | { state: 'NACKED'; sent: string; message: string; at: string }
  | { state: 'NOT SENT' };

/**
 * One type of one client, as istioctl reads it: NACKED when the version last
 * sent was rejected and nothing newer was sent since, SYNCED when the client
 * ACKed what was last sent, STALE while an ACK is outstanding, NOT SENT when
 * the client never subscribed to the type or was never answered.
 */
export function syncState(t: TypeStatus | undefined): SyncState {
  if (t?.sentVersion === undefined) return { state: 'NOT SENT' };
  const sent = t.sentVersion;
  if (t.ackedVersion === sent) return { state: 'SYNCED', version: sent };
  if (t.lastNack !== undefined && t.lastNack.version === sent) return { state: 'NACKED', sent, message: t.lastNack.message, at: t.lastNack.at };
  return { state: 'STALE', sent, ...(t.ackedVersion !== undefined ? { acked: t.ackedVersion } : {}) };
}

export function syncCell(s: SyncState): string {
  switch (s.state) {
    case 'SYNCED':
    case 'NOT SENT':
      return s.state;
    case 'STALE':
      return `STALE (sent ${short(s.sent)}, acked ${s.acked === undefined ? '-' : short(s.acked)})`;
    case 'NACKED': {
      const msg = s.message.replace(/\s+/g, ' ').trim();
      return `NACKED: ${msg.length > NACK_CELL_MAX ? `${msg.slice(0, NACK_CELL_MAX - 1)}…` : msg}`;
    }
  }
}

function short(version: string): string {
  return version.slice(0, 8);
}

export async function listXdsClients(client: ApiClient): Promise<XdsClient[]> {
  return (await client.json<{ items: XdsClient[] }>('GET', '/xds/clients')).items;
}

export function proxyStatusTable(items: readonly XdsClient[], now: number): string {
  const rows = items.map((c) => [
    c.nodeId,
    c.workload ?? '<none>',
    c.namespace,
    ...TYPES.map((t) => syncCell(syncState(c.types[t]))),
    c.lastPushAt === undefined ? '<none>' : humanDuration(now - Date.parse(c.lastPushAt)),
  ]);
  return renderTable(['NAME', 'WORKLOAD', 'NAMESPACE', ...TYPES, 'AGE'], rows);
}

export function registerProxyStatus(program: Command): void {
  program
    .command('proxy-status')
    .description('the xDS clients connected to the control plane, and whether each has what was last sent')
    .addOption(new Option('-o, --output <format>', 'output format').choices(FORMATS).default('table'))
    .addHelpText(
      'after',
      '\nPer type (CDS, LDS, EDS, RDS): SYNCED (the client ACKed what was last sent), STALE (sent v, acked w: an ACK is outstanding),\nNACKED: <message> (the client rejected the last version and keeps its previous config), NOT SENT (never subscribed or answered).\nAGE is the time since the last push to that client.',
    )
    .action(async (opts: { output: Format }, cmd: Command) => {
      const items = await listXdsClients(clientFor(cmd));
      // The machine-readable forms carry the computed state too, so scripts need not re-derive it.
      const withSync = items.map((c) => ({ ...c, sync: Object.fromEntries(TYPES.map((t) => [t, syncState(c.types[t])])) }));
      switch (opts.output) {
        case 'json':
          process.stdout.write(toJson({ items: withSync }));
          return;
        case 'yaml':
          process.stdout.write(toYaml({ items: withSync }));
          return;
        case 'table':
          if (items.length === 0) {
            process.stderr.write('No xDS clients connected.\n');
            return;
          }
          process.stdout.write(proxyStatusTable(items, Date.now()));
      }
    });
}
