import { Argument, Option, type Command } from 'commander';
import { WeftError } from '../../lib/errors.js';
import type { ApiClient } from '../client.js';
import { clientFor } from '../context.js';
import { toJson, toYaml } from '../output.js';
import { listXdsClients, type XdsClient } from './proxy-status.js';

const SECTIONS = ['listeners', 'routes', 'clusters', 'endpoints', 'secrets', 'all'] as const;
type Section = (typeof SECTIONS)[number];
const FORMATS = ['yaml', 'json'] as const;

/**
 * PROXY as people type it: an exact node id, else a unique node-id prefix, else
 * a workload (`name` or `namespace/name`). Ambiguity is an error that lists the
 * candidates, never a guess.
 */
export function resolveProxy(clients: readonly XdsClient[], proxy: string): XdsClient {
  const exact = clients.filter((c) => c.nodeId === proxy);
  // The newest stream of a node id, as the server's configOf does.
  if (exact.length > 0) return exact[exact.length - 1]!;
  const byWorkload = clients.filter((c) => c.workload !== undefined && (c.workload === proxy || c.workload.slice(c.workload.indexOf('/') + 1) === proxy));
  const byPrefix = clients.filter((c) => c.nodeId.startsWith(proxy));
  const found = uniqueByNode(byWorkload.length > 0 ? byWorkload : byPrefix);
  if (found.length === 1) return found[0]!;
  if (found.length === 0) {
    const known = uniqueByNode(clients).map((c) => c.nodeId);
    throw new WeftError('WEFT_ERR_NOT_FOUND', `no connected xDS client matches "${proxy}" (connected: ${known.length === 0 ? 'none' : known.join(', ')})`);
  }
  throw new WeftError('WEFT_ERR_USAGE', `"${proxy}" matches ${found.length} xDS clients: ${found.map((c) => c.nodeId).join(', ')}; give more of the node id`);
}

function uniqueByNode(clients: readonly XdsClient[]): XdsClient[] {
  return [...new Map(clients.map((c) => [c.nodeId, c])).values()];
}

export async function proxyConfig(client: ApiClient, nodeId: string, section: Section): Promise<Record<string, unknown>> {
  const path = `/xds/clients/${encodeURIComponent(nodeId)}/config`;
  return client.json<Record<string, unknown>>('GET', path, { query: { type: section === 'all' ? undefined : section } });
}

export function registerProxyConfig(program: Command): void {
  program
    .command('proxy-config')
    .description('the xDS resources the control plane last sent to one client')
    .argument('<proxy>', 'node id, a unique prefix of one, or a workload name ([namespace/]name)')
    .addArgument(new Argument('<section>', 'which resources').choices(SECTIONS))
    .addOption(new Option('-o, --output <format>', 'output format').choices(FORMATS).default('yaml'))
    .addHelpText('after', '\nOne section prints a list of resources; "all" prints { nodeId, listeners, routes, clusters, endpoints, secrets }.\nsecrets lists the Secrets sent over ADS by name and kind, never their bytes (only the trust bundle ROOTCA is ever sent).\nThis is what was sent, which the client may have NACKed: see weft proxy-status.')
    .action(async (proxy: string, section: Section, opts: { output: (typeof FORMATS)[number] }, cmd: Command) => {
      const client = clientFor(cmd);
      const target = resolveProxy(await listXdsClients(client), proxy);
      const body = await proxyConfig(client, target.nodeId, section);
      const out = section === 'all' ? body : (body[section] ?? []);
      process.stdout.write(opts.output === 'json' ? toJson(out) : toYaml(out));
    });
}
