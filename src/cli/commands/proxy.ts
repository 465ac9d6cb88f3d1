import { isIP } from 'node:net';
import { InvalidArgumentError, type Command } from 'commander';
import type { IdentityManager } from '../../proxy/identity/index.js';
import type { Proxy } from '../../proxy/proxy.js';
import { WeftError } from '../../lib/errors.js';
import { globalOptions, serverOf } from '../context.js';
import { NODE_METADATA, serviceAccountOf } from '../../proxy/xds-client/node-metadata.js';

/** The Listener the control plane gives every Weft proxy (src/control/xds/names.ts). */
const OUTBOUND_LISTENER = 'outbound';
/** The mTLS listener other proxies reach this workload through (src/control/xds/inbound.ts); control-plane default 0.0.0.0:15006. */
const INBOUND_LISTENER = 'inbound';
const DEFAULT_INBOUND_PORT = 15006;
/** How often readiness is checked before the ready line (no event exposes it). */
const READY_POLL_MS = 25;

interface ProxyCommandOptions {
  xds: string[];
  service: string;
  namespace: string;
  workloadPort?: number[];
  workloadAddress: string;
  adminAddr: string;
  outboundAddr: string;
  inboundAddr?: string;
  bootstrap?: string;
  nodeId?: string;
  drainTimeout: number;
  concurrency: number;
  logLevel?: string;
  api?: string;
  xdsTls?: boolean;
  xdsProtocol?: 'sotw' | 'delta';
  locality?: { region: string; zone?: string; sub_zone?: string };
  transparent?: boolean;
  proxyGid: number;
  captureExcludeInboundPorts?: number[];
  captureExcludeOutboundPorts?: number[];
  captureExcludeCidrs?: string[];
  hostsFile?: string;
}

const HOST_PORT = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/;

function hostPort(flag: string): (v: string) => string {
  return (v) => {
    const m = HOST_PORT.exec(v);
    if (m === null || Number(m[3]) > 65535) throw new InvalidArgumentError(`${flag}: want host:port, got "${v}"`);
    return v;
  };
}

function xdsList(v: string, prev: string[] | undefined): string[] {
  const out = [...(prev ?? [])];
  for (const a of v.split(',')) {
    const t = a.trim();
    if (t === '') continue;
    out.push(hostPort('--xds')(t));
  }
  return out;
}

function portList(v: string, prev: number[] | undefined): number[] {
  const out = [...(prev ?? [])];
  for (const p of v.split(',')) {
    const n = Number(p.trim());
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError(`--workload-port: want a port (1-65535), got "${p.trim()}"`);
    out.push(n);
  }
  return out;
}

function xdsProtocol(v: string): 'sotw' | 'delta' {
  if (v !== 'sotw' && v !== 'delta') throw new InvalidArgumentError(`--xds-protocol: want delta or sotw, got "${v}"`);
  return v;
}

function workerCount(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new InvalidArgumentError(`want a number of workers (1-256), got "${v}"`);
  return n;
}

function positiveMs(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`want milliseconds (an integer ≥ 0), got "${v}"`);
  return n;
}

const LOCALITY_PART = /^[A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])?$/;

/** `--locality region[/zone[/subzone]]`: the xDS node.locality. */
export function parseLocality(v: string): { region: string; zone?: string; sub_zone?: string } {
  const parts = v.split('/');
  if (parts.length > 3 || parts.some((p) => !LOCALITY_PART.test(p))) {
    throw new InvalidArgumentError(`--locality: want region[/zone[/subzone]] (letters, digits, '-', '_', '.'), got "${v}"`);
  }
  const [region, zone, subzone] = parts as [string, string | undefined, string | undefined];
  return { region, ...(zone !== undefined ? { zone } : {}), ...(subzone !== undefined ? { sub_zone: subzone } : {}) };
}

/**
 * The node id: Istio's `sidecar~IP~NAME.NAMESPACE`, plus the workload ports, so that
 * two instances of a Service on one host (one address) stay two workloads.
 */
export function defaultNodeId(o: { workloadAddress: string; service: string; namespace: string; workloadPort: readonly number[] }): string {
  const base = `sidecar~${o.workloadAddress}~${o.service}.${o.namespace}`;
  return o.workloadPort.length === 0 ? base : `${base}~${o.workloadPort.join(',')}`;
}

export function registerProxy(program: Command): void {
  program
    .command('proxy')
    .description('run a sidecar proxy for one workload: registers it with the control plane and serves the outbound listener')
    .requiredOption('--xds <host:port[,host:port]>', 'control plane xDS address(es); repeat or separate with commas', xdsList)
    .requiredOption('--service <name>', 'the Service this workload belongs to')
    .option('--namespace <ns>', 'namespace of the workload', 'default')
    .option('--workload-port <port[,port]>', 'port(s) the application listens on; repeatable', portList)
    .option('--workload-address <ip>', 'IP address the application is reached at', '127.0.0.1')
    .option('--admin-addr <host:port>', 'admin endpoint (/ready, /config_dump, /clusters, /stats, /metrics, /drain); port 0 picks one', hostPort('--admin-addr'), '127.0.0.1:15000')
    .option('--outbound-addr <host:port>', `where to bind the "${OUTBOUND_LISTENER}" listener instead of the address the control plane gives; port 0 picks one`, hostPort('--outbound-addr'), '127.0.0.1:15001')
    .option('--inbound-addr <host:port>', `where to bind the "${INBOUND_LISTENER}" listener (mTLS from other proxies) instead of the address the control plane gives (0.0.0.0:${DEFAULT_INBOUND_PORT}); port 0 picks a free port before connecting, and the port is sent to the control plane (node metadata WEFT_INBOUND_PORT)`, hostPort('--inbound-addr'))
    .option('--bootstrap <file>', 'Envoy-style bootstrap (JSON or YAML): static listeners and clusters, node, admin')
    .option('--locality <region/zone/subzone>', 'where this proxy runs (xDS node.locality; zone and subzone optional): endpoints in the same subzone, zone, region are preferred in that order, the others take over when they fail', parseLocality)
    .option('--node-id <id>', 'xDS node id (default: sidecar~ADDRESS~SERVICE.NAMESPACE[~PORTS])')
    .option('--drain-timeout <ms>', 'on SIGTERM/SIGINT, how long busy connections may finish', positiveMs, 5000)
    .option('--concurrency <n>', 'worker processes sharing the listeners (node:cluster); 1 serves in this process; one xDS stream and one admin endpoint either way', workerCount, 2)
    .option('--log-level <level>', 'trace, debug, info, warn, error or silent (default: WEFT_LOG_LEVEL or info)')
    .option('--transparent', 'Linux, root, in the workload\'s network namespace: capture the app\'s TCP with iptables (outbound → the outbound listener, inbound → 15006) and route by original destination; rules removed on exit')
    .option('--proxy-gid <gid>', 'with --transparent: group the proxy switches to; its own traffic is never captured', (v: string) => Number(v), 1337)
    .option('--capture-exclude-inbound-ports <port[,port]>', 'with --transparent: inbound ports never redirected (default 22,15000,15001,15006,15010,15020)', (v: string, prev: number[] | undefined) => portList(v, prev))
    .option('--capture-exclude-outbound-ports <port[,port]>', 'with --transparent: outbound destination ports never redirected', (v: string, prev: number[] | undefined) => portList(v, prev))
    .option('--capture-exclude-cidrs <cidr[,cidr]>', 'with --transparent: outbound destinations never redirected (loopback never is)', (v: string, prev: string[] | undefined) => [...(prev ?? []), ...v.split(',').map((c) => c.trim()).filter((c) => c !== '')])
    .option('--xds-tls', 'connect to the control plane over mTLS with the workload certificate (needs --token; --xds names the control plane\'s --xds-tls-addr, default port 15012)')
    .option('--xds-protocol <delta|sotw>', 'xDS flavour: delta (incremental, the default: only changed resources travel, a reconnect resends nothing the proxy holds; falls back to sotw if the server lacks it) or sotw (state of the world)', xdsProtocol)
    .option('--hosts-file <path>', 'keep this file listing every Service the proxy routes to at its VIP (240.240.0.0/16), for transparent mode: e.g. /etc/netns/NS/hosts, which ip netns exec shows the app as /etc/hosts')
    .option('--api <url>', 'control plane HTTP API the workload certificate comes from, with --token (default: --server, WEFT_SERVER or http://127.0.0.1:15020)')
    .addHelpText('after', `
In explicit mode the outbound listener takes proxy-style requests:
  curl -x http://127.0.0.1:15001 http://catalog.default/items
and origin-form requests routed by their Host header. Prints one line when ready:
  weft proxy ready: admin=<url> outbound=<host:port> node=<id>
SIGTERM or SIGINT: stop accepting, let busy requests finish (--drain-timeout), exit 0.
With --token JOIN_TOKEN (from weft token create; or WEFT_JOIN_TOKEN) the proxy makes its own
key, gets its workload certificate from --api before it starts, renews it at about half
life, and shows it at the admin endpoint /certs. For weft proxy, --token is that join token,
not the admin token.`)
    .action(async (opts: ProxyCommandOptions, cmd: Command) => {
      if (isIP(opts.workloadAddress) === 0) {
        throw new WeftError('WEFT_ERR_USAGE', `--workload-address: "${opts.workloadAddress}" is not an IP address`);
      }
      if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(opts.service)) throw new WeftError('WEFT_ERR_USAGE', `--service: "${opts.service}" is not a valid name (lower case letters, digits, '-')`);
      if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(opts.namespace)) throw new WeftError('WEFT_ERR_USAGE', `--namespace: "${opts.namespace}" is not a valid name (lower case letters, digits, '-')`);
      // First: the gid switch must come before the proxy opens any socket.
      if (opts.transparent === true) await startCapture(opts);
      // Loaded here: other commands start faster without the proxy code.
      const { startProxy } = await import('../../proxy/proxy.js');
      const g = globalOptions(cmd);
      const logLevel = opts.logLevel ?? process.env.WEFT_LOG_LEVEL ?? (g.verbose === true ? 'debug' : 'info');
      const ports = opts.workloadPort ?? [];
      const nodeId = opts.nodeId ?? defaultNodeId({ ...opts, workloadPort: ports });
      const identity = await startIdentity(opts, g, logLevel);
      if (opts.xdsTls === true) {
        if (identity === undefined) throw new WeftError('WEFT_ERR_USAGE', '--xds-tls authenticates with the workload certificate: pass the join token with --token (weft token create)');
        await (await import('../../proxy/xds-client/xds-tls.js')).useXdsTls(identity);
      }
      // The control plane points other proxies' EDS endpoints at this port, so it must be
      // known before the first xDS request: port 0 is resolved to a free port here.
      const inboundAddr = opts.inboundAddr === undefined ? undefined : await concreteAddr(opts.inboundAddr);
      const inboundPort = inboundAddr === undefined ? DEFAULT_INBOUND_PORT : Number(HOST_PORT.exec(inboundAddr)![3]);
      const hosts = opts.hostsFile === undefined ? undefined : (await import('../../proxy/capture/hosts-file.js')).followHostsFile(opts.hostsFile, (e) => {
        process.stderr.write(`warning: --hosts-file ${opts.hostsFile}: ${e instanceof Error ? e.message : String(e)}\n`);
      });
      const proxy = await startProxy({
        ...(hosts !== undefined ? { onXdsResponse: (e: { accepted: boolean }) => hosts.onXdsResponse(e) } : {}),
        ...(opts.bootstrap !== undefined ? { bootstrap: opts.bootstrap } : {}),
        adminAddr: opts.adminAddr,
        xdsAddresses: opts.xds,
        // The inbound listener serves mTLS with the workload certificate: a proxy without one
        // (no --token) and no explicit --inbound-addr stays a plaintext sidecar — no
        // WEFT_INBOUND_PORT, so the control plane keeps sending peers to the app's port.
        node: { id: nodeId, ...(opts.locality !== undefined ? { locality: opts.locality } : {}), ...(identity !== undefined || inboundAddr !== undefined ? { metadata: { [NODE_METADATA.inboundPort]: String(inboundPort) } } : {}) },
        // Registered as the certificate's service account, the identity peers will verify.
        workload: { service: opts.service, namespace: opts.namespace, address: opts.workloadAddress, ports, serviceAccount: serviceAccountOf(identity?.current()?.spiffeId) },
        listenerAddresses: { [OUTBOUND_LISTENER]: opts.outboundAddr, ...(inboundAddr !== undefined ? { [INBOUND_LISTENER]: inboundAddr } : {}) },
        drainMs: opts.drainTimeout,
        concurrency: opts.concurrency,
        ...(opts.xdsProtocol !== undefined ? { xdsProtocol: opts.xdsProtocol } : {}),
        logLevel,
        ...(identity ? { identity } : {}),
      });
      const stop = handleSignals(proxy);
      hosts?.attach(() => proxy.snapshot());
      const port = await whenReady(proxy, stop);
      if (port === undefined) return;
      // The app may resolve Service names as soon as the ready line is out.
      await hosts?.sync();
      const host = HOST_PORT.exec(opts.outboundAddr)!;
      const outHost = host[1] !== undefined ? `[${host[1]}]` : host[2]!;
      process.stdout.write(`weft proxy ready: admin=${proxy.adminUrl} outbound=${outHost}:${port} node=${nodeId}\n`);
      if (inboundAddr !== undefined) process.stdout.write(`weft proxy inbound: ${inboundAddr} (mTLS; bound when the control plane sends the "${INBOUND_LISTENER}" listener)\n`);
    });
}

/**
 * `host:0` → `host:<a free port>`: bound, read and released at once. Another process
 * could take it in between; the listener then fails to bind and says so in the log.
 */
async function concreteAddr(addr: string): Promise<string> {
  const m = HOST_PORT.exec(addr)!;
  if (Number(m[3]) !== 0) return addr;
  const host = m[1] ?? m[2]!;
  const { createServer } = await import('node:net');
  const port = await new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
  return `${m[1] !== undefined ? `[${host}]` : host}:${port}`;
}

/** --transparent: switch to the proxy gid, install the iptables capture (removed at exit). */
async function startCapture(opts: ProxyCommandOptions): Promise<void> {
  if (!Number.isInteger(opts.proxyGid) || opts.proxyGid < 1) throw new WeftError('WEFT_ERR_USAGE', `--proxy-gid: want a group id ≥ 1, got "${opts.proxyGid}"`);
  const { enableTransparentProxy } = await import('../../proxy/capture/transparent.js');
  const outPort = Number(HOST_PORT.exec(opts.outboundAddr)![3]);
  // Redirect targets must be known before the listeners bind: fixed ports only.
  const inPort = opts.inboundAddr === undefined ? 15006 : Number(HOST_PORT.exec(opts.inboundAddr)![3]);
  if (outPort === 0 || inPort === 0) throw new WeftError('WEFT_ERR_USAGE', '--transparent redirects to fixed ports: give --outbound-addr and --inbound-addr a port other than 0');
  await enableTransparentProxy({
    proxyGid: opts.proxyGid,
    capture: {
      outboundPort: outPort,
      inboundPort: inPort,
      ...(opts.captureExcludeInboundPorts !== undefined ? { excludeInboundPorts: opts.captureExcludeInboundPorts } : {}),
      ...(opts.captureExcludeOutboundPorts !== undefined ? { excludeOutboundPorts: opts.captureExcludeOutboundPorts } : {}),
      ...(opts.captureExcludeCidrs !== undefined ? { excludeOutboundCidrs: opts.captureExcludeCidrs } : {}),
    },
  });
  process.stdout.write(`weft proxy capture: iptables rules installed (outbound → ${outPort}, inbound → ${inPort}, proxy gid ${opts.proxyGid})\n`);
}

/**
 * The workload certificate, before anything else starts: a refused token or
 * CSR stops the proxy with the CA's reason. Without a join token, none.
 */
async function startIdentity(opts: ProxyCommandOptions, g: ReturnType<typeof globalOptions>, logLevel: string): Promise<IdentityManager | undefined> {
  const envToken = process.env.WEFT_JOIN_TOKEN;
  const joinToken = g.token ?? (envToken !== undefined && envToken !== '' ? envToken : undefined);
  if (joinToken === undefined) {
    if (opts.api !== undefined) throw new WeftError('WEFT_ERR_USAGE', '--api names where the workload certificate comes from: pass the join token with --token (weft token create)');
    return undefined;
  }
  const { createIdentityManager } = await import('../../proxy/identity/index.js');
  const { createLogger } = await import('../../lib/log.js');
  const identity = createIdentityManager({ apiUrl: (opts.api ?? serverOf(g)).replace(/\/+$/, ''), joinToken, log: createLogger('weft-proxy', logLevel) });
  const svid = await identity.start();
  process.stdout.write(`weft proxy identity: ${svid.spiffeId} serial=${svid.serialNumber} expires=${svid.notAfter.toISOString()}\n`);
  return identity;
}

/**
 * Resolves with the outbound listener's port once the proxy is ready (first xDS
 * config applied, listeners bound) and that listener is bound; undefined if a
 * signal came first.
 */
function whenReady(proxy: Proxy, stop: { stopping: boolean }): Promise<number | undefined> {
  const started = Date.now();
  let warned = false;
  return new Promise((resolve) => {
    const check = (): void => {
      if (stop.stopping) return resolve(undefined);
      const port = proxy.listenerPort(OUTBOUND_LISTENER);
      if (proxy.isReady() && port !== undefined) return resolve(port);
      if (!warned && Date.now() - started > 20_000) {
        warned = true;
        process.stderr.write(`warning: still waiting for the "${OUTBOUND_LISTENER}" listener from the control plane (is --xds right?)\n`);
      }
      setTimeout(check, READY_POLL_MS);
    };
    check();
  });
}

/** SIGINT/SIGTERM: drain (stop accepting, finish busy requests), close, exit 0. A second signal exits at once. */
function handleSignals(proxy: Proxy): { stopping: boolean } {
  const state = { stopping: false };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (state.stopping) {
      process.stderr.write(`${signal} again: exiting without waiting\n`);
      process.exit(130);
    }
    state.stopping = true;
    proxy.drain().then(() => proxy.close()).then(
      () => process.exit(0),
      (e: unknown) => {
        process.stderr.write(`error: stopping the proxy failed: ${e instanceof Error ? e.message : String(e)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return state;
}
