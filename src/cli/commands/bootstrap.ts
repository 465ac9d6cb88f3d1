import { Option, type Command } from 'commander';
import { DEFAULT_NAMESPACE } from '../../api/types.js';
import { WeftError } from '../../lib/errors.js';
import { toJson } from '../output.js';

/**
 * `weft bootstrap grpc --server` (DESIGN.md) is a flag, while the global
 * `--server <url>` takes a URL and commander lets global options appear after
 * the subcommand. `bootstrap` is offline and never needs the URL, so main.ts
 * rewrites `--server` after the word `bootstrap` to this spelling first.
 */
export const BOOTSTRAP_SERVER_FLAG = '--grpc-server';

interface GrpcOptions {
  service: string;
  namespace: string;
  grpcServer?: boolean;
  xds: string;
  nodeId?: string;
}

export function registerBootstrap(program: Command): void {
  const bootstrap = program.command('bootstrap').description('print bootstrap configuration for xDS clients (offline)');
  bootstrap
    .command('grpc')
    .description('the bootstrap JSON of a proxyless gRPC application (@grpc/grpc-js-xds)')
    .requiredOption('--service <name>', 'the Service this application is (its identity)')
    .option('--namespace <ns>', 'its namespace', DEFAULT_NAMESPACE)
    .addOption(new Option('--server', 'the application serves through XdsServer (adds server_listener_resource_name_template)'))
    .addOption(new Option(BOOTSTRAP_SERVER_FLAG).hideHelp())
    .option('--xds <host:port>', "the control plane's plaintext xDS address", '127.0.0.1:15010')
    .option('--node-id <id>', 'xDS node id; must be unique per process (default: <service>.<namespace>~<random>)')
    .addHelpText(
      'after',
      '\nUse it as GRPC_XDS_BOOTSTRAP (a file) or GRPC_XDS_BOOTSTRAP_CONFIG (the JSON itself):\n  GRPC_XDS_BOOTSTRAP_CONFIG="$(weft bootstrap grpc --service web)" node app.js\nClients then dial xds:///<service>.<namespace>:<port>.',
    )
    .action(async (opts: GrpcOptions) => {
      const { parseHostPort } = await import('../../control/control-plane.js');
      const { grpcBootstrap } = await import('../../control/xds/grpc-bootstrap.js');
      parseHostPort(opts.xds);
      if (opts.nodeId !== undefined && opts.nodeId.trim() === '') throw new WeftError('WEFT_ERR_USAGE', '--node-id must not be empty');
      const json = grpcBootstrap({
        service: opts.service,
        namespace: opts.namespace,
        xdsAddress: opts.xds,
        ...(opts.grpcServer ? { server: true } : {}),
        ...(opts.nodeId !== undefined ? { nodeId: opts.nodeId } : {}),
      });
      process.stdout.write(toJson(json));
    });
}

/** See BOOTSTRAP_SERVER_FLAG. `args` is argv without node and the script. */
export function rewriteBootstrapServerFlag(args: readonly string[]): string[] {
  const globalsWithValue = new Set(['--server', '--token', '--data-dir']);
  let i = 0;
  while (i < args.length && args[i]!.startsWith('-') && args[i] !== '--') i += globalsWithValue.has(args[i]!) ? 2 : 1;
  if (args[i] !== 'bootstrap') return [...args];
  const end = args.indexOf('--', i);
  return args.map((a, j) => (j > i && (end === -1 || j < end) && a === '--server' ? BOOTSTRAP_SERVER_FLAG : a));
}
