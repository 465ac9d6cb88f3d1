import { isIP } from 'node:net';
import { InvalidArgumentError, type Command } from 'commander';
import { WeftError } from '../../lib/errors.js';
import { globalOptions, serverOf } from '../context.js';
import { parseLocality } from './proxy.js';

interface RunCommandOptions {
  service: string;
  namespace: string;
  port?: number[];
  labels?: Record<string, string>;
  serviceAccount?: string;
  xds: string[];
  workloadAddress: string;
  adminAddr: string;
  outboundAddr: string;
  inboundAddr?: string;
  tcpPorts: 'free' | 'service';
  nodeId?: string;
  locality?: { region: string; zone?: string; sub_zone?: string };
  drainTimeout: number;
  readyTimeout: number;
  logLevel?: string;
  api?: string;
  stopWithParent?: boolean;
  transparent?: boolean;
  proxyGid: number;
  xdsTls?: boolean;
  hostsFile?: string;
}

const HOST_PORT = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/;
const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function hostPort(flag: string): (v: string) => string {
  return (v) => {
    const m = HOST_PORT.exec(v);
    if (m === null || Number(m[3]) > 65535) throw new InvalidArgumentError(`${flag}: want host:port, got "${v}"`);
    return v;
  };
}

function xdsList(v: string, prev: string[] | undefined): string[] {
  // commander passes the default as `prev` the first time: a given flag replaces it.
  const out = prev === DEFAULT_XDS ? [] : [...(prev ?? [])];
  for (const a of v.split(',')) if (a.trim() !== '') out.push(hostPort('--xds')(a.trim()));
  return out;
}
const DEFAULT_XDS = ['127.0.0.1:15010'];
/** The control plane's --xds-tls-addr default: where --xds-tls goes unless --xds says otherwise. */
const DEFAULT_XDS_TLS = ['127.0.0.1:15012'];

function portList(v: string, prev: number[] | undefined): number[] {
  const out = [...(prev ?? [])];
  for (const p of v.split(',')) {
    const n = Number(p.trim());
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError(`--port: want a port (1-65535), got "${p.trim()}"`);
    out.push(n);
  }
  return out;
}

function labelList(v: string, prev: Record<string, string> | undefined): Record<string, string> {
  const out = { ...(prev ?? {}) };
  for (const pair of v.split(',')) {
    const i = pair.indexOf('=');
    if (i <= 0) throw new InvalidArgumentError(`--labels: want key=value[,key=value], got "${pair}"`);
    out[pair.slice(0, i).trim()] = pair.slice(i + 1).trim();
  }
  return out;
}

function ms(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`want milliseconds (an integer ≥ 0), got "${v}"`);
  return n;
}

function tcpPorts(v: string): 'free' | 'service' {
  if (v !== 'free' && v !== 'service') throw new InvalidArgumentError(`want free or service, got "${v}"`);
  return v;
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run an application with its own sidecar: the app starts once the sidecar is ready, and the sidecar drains and exits when the app exits')
    .argument('<command...>', 'the application and its arguments (after --)')
    .requiredOption('--service <name>', 'the Service this workload belongs to')
    .option('--namespace <ns>', 'namespace of the workload', 'default')
    .option('--port <port[,port]>', 'port(s) the application listens on (the first is $PORT); repeatable', portList)
    .option('--labels <k=v[,k=v]>', 'workload labels (Service selectors match them); repeatable', labelList)
    .option('--service-account <sa>', 'service account of the workload (default: the one of the join token, else "default")')
    .option('--xds <host:port[,host:port]>', 'control plane xDS address(es); with --xds-tls and no --xds, 127.0.0.1:15012', xdsList, DEFAULT_XDS)
    .option('--xds-tls', 'connect to the control plane over mTLS with the workload certificate (needs --token; --xds names the control plane\'s --xds-tls-addr)')
    .option('--api <url>', 'control plane HTTP API (workload certificate, Service list) (default: --server, WEFT_SERVER or http://127.0.0.1:15020)')
    .option('--workload-address <ip>', 'IP address the application is reached at (it should listen there: $WEFT_WORKLOAD_ADDRESS)', '127.0.0.1')
    .option('--admin-addr <host:port>', 'sidecar admin endpoint (port 0 picks one)', hostPort('--admin-addr'), '127.0.0.1:0')
    .option('--outbound-addr <host:port>', 'sidecar outbound listener, the app\'s HTTP_PROXY (port 0 picks one)', hostPort('--outbound-addr'), '127.0.0.1:0')
    .option('--inbound-addr <host:port>', 'sidecar inbound listener (default: a free port on --workload-address)', hostPort('--inbound-addr'))
    .option('--tcp-ports <free|service>', 'local ports of TCP Services: free (one per sidecar; $WEFT_<SERVICE>_URL tells the app) or service (the Service port, one sidecar per host)', tcpPorts, 'free')
    .option('--node-id <id>', 'xDS node id (default: sidecar~ADDRESS~SERVICE.NAMESPACE[~PORTS])')
    .option('--locality <region/zone/subzone>', 'where this workload runs (xDS node.locality)', parseLocality)
    .option('--drain-timeout <ms>', 'after the app exits, how long busy connections of the sidecar may finish', ms, 5000)
    .option('--ready-timeout <ms>', 'how long to wait for the sidecar\'s first configuration', ms, 60_000)
    .option('--stop-with-parent', 'stop the app (as on SIGTERM) when the process that started weft run goes away; weft up uses it')
    .option('--transparent', 'Linux, root, in the app\'s network namespace: capture its TCP with iptables instead of HTTP_PROXY (docs/running-on-many-hosts.md); rules removed when the app exits')
    .option('--proxy-gid <gid>', 'with --transparent: group the sidecar runs as (its traffic is not captured); the app keeps weft run\'s own group', (v: string) => Number(v), 1337)
    .option('--hosts-file <path>', 'keep this file listing every Service the sidecar routes to at its VIP (240.240.0.0/16), written before the app starts: for --transparent, e.g. /etc/netns/NS/hosts, which ip netns exec shows the app as /etc/hosts')
    .option('--log-level <level>', 'sidecar log level: trace, debug, info, warn, error or silent (default: WEFT_LOG_LEVEL or warn)')
    .addHelpText('after', `
Example:
  weft run --service catalog --port 8080 --labels version=v1 -- node catalog.mjs

The app gets:
  HTTP_PROXY, http_proxy   the sidecar's outbound listener (explicit mode):
                           curl -x "$HTTP_PROXY" http://inventory.default:50051/...
  NO_PROXY                 loopback (the sidecar's admin endpoint, the app's own ports)
  WEFT_<SERVICE>_URL       per Service of its namespace: http://catalog.default (through
                           HTTP_PROXY) or, for TCP Services, tcp://127.0.0.1:<local port>
  WEFT_<SERVICE>_<NAMESPACE>_URL, WEFT_<SERVICE>_<PORT>_URL   every Service; every port
  WEFT_SERVICE, WEFT_NAMESPACE, WEFT_WORKLOAD_ADDRESS, WEFT_PROXY_ADMIN, WEFT_OUTBOUND,
  WEFT_SPIFFE_ID (with a join token), PORT (the first --port)
SIGINT, SIGTERM and SIGHUP go to the app. When the app exits, the sidecar drains
(--drain-timeout) and weft run exits with the app's code (128+N after signal N).
With --token JOIN_TOKEN (weft token create; or WEFT_JOIN_TOKEN) the sidecar gets its
workload certificate from --api first. For weft run, --token is that join token.`)
    .action(async (command: string[], opts: RunCommandOptions, cmd: Command) => {
      if (!NAME.test(opts.service)) throw new WeftError('WEFT_ERR_USAGE', `--service: "${opts.service}" is not a valid name (lower case letters, digits, '-')`);
      if (!NAME.test(opts.namespace)) throw new WeftError('WEFT_ERR_USAGE', `--namespace: "${opts.namespace}" is not a valid name (lower case letters, digits, '-')`);
      if (isIP(opts.workloadAddress) === 0) throw new WeftError('WEFT_ERR_USAGE', `--workload-address: "${opts.workloadAddress}" is not an IP address`);
      const [bin, ...args] = command;
      if (bin === undefined || bin === '') throw new WeftError('WEFT_ERR_USAGE', 'give the command to run after --, e.g. weft run --service web -- node web.mjs');
      const g = globalOptions(cmd);
      const envToken = process.env.WEFT_JOIN_TOKEN;
      const joinToken = g.token ?? (envToken !== undefined && envToken !== '' ? envToken : undefined);
      if (opts.xdsTls === true && joinToken === undefined) throw new WeftError('WEFT_ERR_USAGE', '--xds-tls authenticates with the workload certificate: pass the join token with --token (weft token create)');
      // Whoever reads our output may go away first (weft up killed outright): a write
      // to a closed pipe must not become an error that outlives the app.
      for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
      const { runWorkload } = await import('../../run/run-workload.js');
      // Before the sidecar opens a socket: this process takes the proxy gid, the app gets its own back via setpriv.
      const transparent = opts.transparent === true ? (await import('../../proxy/capture/transparent.js')).prepareTransparentRun({ proxyGid: opts.proxyGid }) : undefined;
      const code = await runWorkload({
        command: transparent === undefined ? bin : 'setpriv',
        args: transparent === undefined ? args : ['--regid', String(transparent.appGid), '--clear-groups', '--', bin, ...args],
        ...(transparent !== undefined ? { hooks: [(ctx) => transparent.hook(ctx)] } : {}),
        service: opts.service,
        namespace: opts.namespace,
        appPorts: opts.port ?? [],
        labels: opts.labels ?? {},
        ...(opts.serviceAccount !== undefined ? { serviceAccount: opts.serviceAccount } : {}),
        xds: opts.xdsTls === true && opts.xds === DEFAULT_XDS ? DEFAULT_XDS_TLS : opts.xds,
        ...(opts.xdsTls === true ? { xdsTls: true } : {}),
        ...(opts.hostsFile !== undefined ? { hostsFile: opts.hostsFile } : {}),
        apiUrl: (opts.api ?? serverOf(g)).replace(/\/+$/, ''),
        ...(joinToken !== undefined ? { joinToken } : {}),
        workloadAddress: opts.workloadAddress,
        adminAddr: opts.adminAddr,
        outboundAddr: opts.outboundAddr,
        ...(opts.inboundAddr !== undefined ? { inboundAddr: opts.inboundAddr } : {}),
        tcpPorts: opts.tcpPorts,
        ...(opts.nodeId !== undefined ? { nodeId: opts.nodeId } : {}),
        ...(opts.locality !== undefined ? { locality: opts.locality } : {}),
        drainMs: opts.drainTimeout,
        readyTimeoutMs: opts.readyTimeout,
        logLevel: opts.logLevel ?? process.env.WEFT_LOG_LEVEL ?? (g.verbose === true ? 'debug' : 'warn'),
        stopWithParent: opts.stopWithParent === true,
        say: (line) => process.stderr.write(`${line}\n`),
      });
      // Exit now: the app is gone and the sidecar closed; a lingering handle must not keep a finished job alive.
      process.exit(code);
    });
}
