import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { SuppliedCaFiles } from '../../control/ca/root.js';
import type { ControlPlane } from '../../control/control-plane.js';
import { formatDuration, parseDuration } from '../../lib/duration.js';
import { WeftError } from '../../lib/errors.js';
import { dataDirOf, defaultDataDir, globalOptions } from '../context.js';

interface ControlOptions {
  apiAddr: string;
  xdsAddr: string;
  xdsTlsAddr?: string;
  xdsInsecurePublic?: boolean;
  logLevel?: string;
  store?: string;
  storePrefix?: string;
  leaseTtl?: string;
  caCert?: string;
  caKey?: string;
  caIntermediateCert?: string;
  caIntermediateKey?: string;
  devWorkloadTtl?: string;
}

/**
 * `--store etcd://host:port[,host:port...]` → etcd client URLs. Plain http
 * (no TLS options yet); list every member.
 */
export function parseEtcdStoreUrl(url: string): string[] {
  const m = /^etcd:\/\/(.+)$/.exec(url.trim());
  if (m === null) throw new WeftError('WEFT_ERR_USAGE', `--store ${url}: expected etcd://host:port[,host:port...] (without --store the store is files in the data directory)`);
  const hosts = m[1]!.split(',').map((h) => h.trim()).filter((h) => h !== '');
  if (hosts.length === 0) throw new WeftError('WEFT_ERR_USAGE', `--store ${url}: no etcd member given`);
  for (const h of hosts) {
    if (!/^(?:\[[^\]]+\]|[^:/[\]]+):\d{1,5}$/.test(h)) throw new WeftError('WEFT_ERR_USAGE', `--store: "${h}" must be host:port (an etcd member's client address)`);
  }
  return hosts.map((h) => `http://${h}`);
}

export function registerControl(program: Command): void {
  program
    .command('control')
    .description('run the control plane (store, HTTP API, xDS server) on this machine')
    .option('--api-addr <host:port>', 'HTTP API address (port 0 picks a free one)', '127.0.0.1:15020')
    .option('--xds-addr <host:port>', 'xDS (gRPC, plaintext) address; loopback only unless --xds-insecure-public (port 0 picks a free one)', '127.0.0.1:15010')
    .option('--xds-tls-addr <host:port|none>', `xDS over mTLS (mesh CA certificate, client certificate required): what proxies on other hosts use; default ${DEFAULT_XDS_TLS_ADDR} when --xds-addr is left at its default, else none unless given (port 0 picks a free one)`)
    .option('--xds-insecure-public', 'allow a non-loopback --xds-addr although xDS is not authenticated yet (trusted networks only)')
    .option('--store <url>', 'keep the configuration in etcd, shared by every replica: etcd://host:port[,host:port...] (default: files in the data directory)')
    .option('--store-prefix <prefix>', 'etcd key prefix; one per Weft installation (default /weft/)')
    .option('--lease-ttl <seconds>', 'with --store etcd: lease TTL of this replica\'s workload registrations and leadership (default 10)')
    .option('--ca-cert <file>', 'the CA root certificate (PEM) instead of a generated root; with several replicas give every one the same files')
    .option('--ca-key <file>', 'the key of --ca-cert (PEM, unencrypted), when the root signs')
    .option('--ca-intermediate-cert <file>', 'an intermediate certificate (PEM) signed by --ca-cert that signs workload certificates instead of the root')
    .option('--ca-intermediate-key <file>', 'the key of --ca-intermediate-cert (PEM, unencrypted)')
    .option('--dev-workload-ttl <duration>', 'TESTING ONLY: every workload certificate lives this long (e.g. 5s, at least 2s), below the Mesh\'s 1m floor; the Mesh\'s workloadTTL is ignored (default: WEFT_DEV_WORKLOAD_TTL, else the Mesh\'s)')
    .option('--log-level <level>', 'trace, debug, info, warn, error or silent (default: WEFT_LOG_LEVEL or info)')
    .addHelpText('after', '\nThe data directory is --data-dir, else WEFT_DATA_DIR, else ~/.weft.')
    .action(async (opts: ControlOptions, cmd: Command) => {
      // Loaded here, not at the top: every other command starts faster without the store and server code.
      const { parseHostPort, startControlPlane } = await import('../../control/control-plane.js');
      const g = globalOptions(cmd);
      const dataDir = resolve(dataDirOf(g) ?? defaultDataDir());
      // Checked here too so a typo fails before the store is opened.
      parseHostPort(opts.apiAddr);
      parseHostPort(opts.xdsAddr);
      const xdsTlsAddr = xdsTlsAddrOf(opts, cmd);
      if (xdsTlsAddr !== undefined) parseHostPort(xdsTlsAddr);
      const etcd = storeSelection(opts);
      const caSupplied = caFiles(opts);
      const { DEV_WORKLOAD_TTL_MIN_MS } = await import('../../control/identity/ca-service.js');
      const devWorkloadTtlMs = devWorkloadTtlOf(opts.devWorkloadTtl ?? process.env.WEFT_DEV_WORKLOAD_TTL, DEV_WORKLOAD_TTL_MIN_MS);
      const logLevel = opts.logLevel ?? process.env.WEFT_LOG_LEVEL ?? (g.verbose ? 'debug' : 'info');
      const cp = await startControlPlane({ dataDir, apiAddr: opts.apiAddr, xdsAddr: opts.xdsAddr, xdsInsecurePublic: opts.xdsInsecurePublic === true, ...(xdsTlsAddr !== undefined ? { xdsTlsAddr } : {}), logLevel, ...(etcd ? { etcd } : {}), ...(caSupplied ? { caSupplied } : {}), ...(devWorkloadTtlMs !== undefined ? { devWorkloadTtlMs } : {}) });
      handleSignals(cp);
      if (devWorkloadTtlMs !== undefined) {
        process.stderr.write(`warning: --dev-workload-ttl: every workload certificate lives ${formatDuration(devWorkloadTtlMs)} and the Mesh's workloadTTL is ignored; for tests and demos only\n`);
      }
      if (etcd && !caSupplied) {
        process.stderr.write('warning: --store etcd without --ca-cert/--ca-key: this replica uses its own generated CA root, so certificates issued by other replicas will not verify against its trust bundle (join tokens are shared); give every replica the same CA files (docs/ha.md)\n');
      }
      if (opts.xdsInsecurePublic) {
        process.stderr.write(`warning: xDS on ${cp.xdsAddress} is plaintext and unauthenticated: anyone who reaches it can read the mesh configuration and register workloads\n`);
      }
      // Its own line, before the ready line: scripts match the ready line to its end.
      if (cp.xdsTlsAddress !== undefined) process.stdout.write(`weft control xds-tls=${cp.xdsTlsAddress}\n`);
      process.stdout.write(`weft control ready: api=${cp.apiUrl} xds=${cp.xdsAddress} data=${dataDir}\n`);
    });
}

/**
 * `--dev-workload-ttl` / WEFT_DEV_WORKLOAD_TTL. A process-local override rather
 * than a lower floor in the Mesh schema: a Mesh saying `5s` would be refused by
 * `weft validate` and by every control plane started without the flag (the
 * store is revalidated at start), so the test setting would leak into stored
 * configuration. This way the stored Mesh stays valid everywhere.
 */
function devWorkloadTtlOf(text: string | undefined, minMs: number): number | undefined {
  if (text === undefined || text === '') return undefined;
  const ms = parseDuration(text);
  if (ms === undefined || ms < minMs) {
    throw new WeftError('WEFT_ERR_USAGE', `--dev-workload-ttl ${text}: expected a duration of at least ${formatDuration(minMs)} such as 5s or 1m30s`);
  }
  return ms;
}

/** Istio's port for xDS over mTLS; 15010 stays the loopback plaintext one (DESIGN.md "Ports"). */
export const DEFAULT_XDS_TLS_ADDR = '0.0.0.0:15012';

/**
 * `--xds-tls-addr`: given → it (`none`: no TLS listener); not given → the
 * default when --xds-addr is at its default too. Someone who lays out ports
 * with --xds-addr (tests, several control planes on one host) gets no fixed
 * port they did not ask for.
 */
function xdsTlsAddrOf(opts: ControlOptions, cmd: Command): string | undefined {
  if (opts.xdsTlsAddr !== undefined) return opts.xdsTlsAddr === 'none' ? undefined : opts.xdsTlsAddr;
  return cmd.getOptionValueSource('xdsAddr') === 'default' ? DEFAULT_XDS_TLS_ADDR : undefined;
}

function storeSelection(opts: ControlOptions): { endpoints: string[]; prefix?: string; leaseTtlSeconds?: number } | undefined {
  if (opts.store === undefined) {
    if (opts.storePrefix !== undefined || opts.leaseTtl !== undefined) throw new WeftError('WEFT_ERR_USAGE', '--store-prefix and --lease-ttl need --store etcd://...');
    return undefined;
  }
  const out: { endpoints: string[]; prefix?: string; leaseTtlSeconds?: number } = { endpoints: parseEtcdStoreUrl(opts.store) };
  if (opts.storePrefix !== undefined) out.prefix = opts.storePrefix;
  if (opts.leaseTtl !== undefined) {
    const n = Number(opts.leaseTtl);
    if (!Number.isInteger(n) || n < 2 || n > 3600) throw new WeftError('WEFT_ERR_USAGE', `--lease-ttl ${opts.leaseTtl}: expected whole seconds from 2 to 3600`);
    out.leaseTtlSeconds = n;
  }
  return out;
}

/** `--ca-cert/--ca-key` or `--ca-cert/--ca-intermediate-cert/--ca-intermediate-key` → the files; none → a generated root. */
function caFiles(opts: ControlOptions): SuppliedCaFiles | undefined {
  const { caCert, caKey, caIntermediateCert, caIntermediateKey } = opts;
  if (caCert === undefined && caKey === undefined && caIntermediateCert === undefined && caIntermediateKey === undefined) return undefined;
  if (caCert === undefined) throw new WeftError('WEFT_ERR_USAGE', '--ca-key and --ca-intermediate-* need --ca-cert (the root certificate)');
  if (caIntermediateCert !== undefined || caIntermediateKey !== undefined) {
    if (caIntermediateCert === undefined || caIntermediateKey === undefined) throw new WeftError('WEFT_ERR_USAGE', '--ca-intermediate-cert and --ca-intermediate-key go together');
    if (caKey !== undefined) throw new WeftError('WEFT_ERR_USAGE', 'with an intermediate, the intermediate signs: leave out --ca-key (the root key can stay offline)');
    return { rootCertFile: resolve(caCert), intermediateCertFile: resolve(caIntermediateCert), intermediateKeyFile: resolve(caIntermediateKey) };
  }
  if (caKey === undefined) throw new WeftError('WEFT_ERR_USAGE', '--ca-cert needs --ca-key (or --ca-intermediate-cert and --ca-intermediate-key)');
  return { rootCertFile: resolve(caCert), rootKeyFile: resolve(caKey) };
}

/** SIGINT/SIGTERM: close (drain requests, close the store), exit 0. A second signal exits at once. */
function handleSignals(cp: ControlPlane): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      process.stderr.write(`${signal} again: exiting without waiting\n`);
      process.exit(130);
    }
    stopping = true;
    cp.close().then(
      () => process.exit(0),
      (e: unknown) => {
        process.stderr.write(`error: closing the control plane failed: ${e instanceof Error ? e.message : String(e)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
