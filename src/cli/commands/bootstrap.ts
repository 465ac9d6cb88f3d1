import { chmod, mkdir, rename, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { DEFAULT_NAMESPACE } from '../../api/types.js';
import { WeftError } from '../../lib/errors.js';
import type { IdentityManager, WorkloadSvid } from '../../proxy/identity/index.js';
import { globalOptions, serverOf } from '../context.js';
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
  certDir?: string;
  api?: string;
  watch?: boolean;
  out?: string;
  refreshInterval: string;
  workloadAddress?: string;
  workloadPort?: string;
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
    .option('--workload-address <ip>', 'register the application as a Workload reached at this IP (servers)')
    .option('--workload-port <port[,port]>', 'with --workload-address: the port(s) it serves')
    .option('--cert-dir <dir>', 'mTLS: keep the workload certificate, key and trust bundle in DIR (cert.pem, key.pem, ca.pem) and name them in certificate_providers; needs --token (a join token)')
    .option('--api <url>', 'with --cert-dir: the control plane HTTP API the certificate comes from (default: WEFT_SERVER or http://127.0.0.1:15020)')
    .option('--watch', 'with --cert-dir: keep running and renew the certificate (new key each time) at about half life, rewriting the files atomically')
    .option('--out <file>', 'write the bootstrap JSON to FILE (atomically) instead of stdout')
    .option('--refresh-interval <seconds>', 'how often gRPC re-reads the certificate files', '10')
    .addHelpText(
      'after',
      '\nUse it as GRPC_XDS_BOOTSTRAP (a file) or GRPC_XDS_BOOTSTRAP_CONFIG (the JSON itself):\n  GRPC_XDS_BOOTSTRAP_CONFIG="$(weft bootstrap grpc --service web)" node app.js\nClients then dial xds:///<service>.<namespace>:<port>.',
    )
    .action(async (opts: GrpcOptions, cmd: Command) => {
      const { parseHostPort } = await import('../../control/control-plane.js');
      const { grpcBootstrap } = await import('../../control/xds/grpc-bootstrap.js');
      parseHostPort(opts.xds);
      if (opts.nodeId !== undefined && opts.nodeId.trim() === '') throw new WeftError('WEFT_ERR_USAGE', '--node-id must not be empty');
      const refresh = Number(opts.refreshInterval);
      if (!Number.isInteger(refresh) || refresh < 1) throw new WeftError('WEFT_ERR_USAGE', `--refresh-interval ${opts.refreshInterval}: expected whole seconds ≥ 1`);
      if (opts.workloadAddress !== undefined && isIP(opts.workloadAddress) === 0) throw new WeftError('WEFT_ERR_USAGE', `--workload-address: "${opts.workloadAddress}" is not an IP address`);
      const ports = opts.workloadPort?.split(',').map((p) => Number(p.trim()));
      if (ports?.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) throw new WeftError('WEFT_ERR_USAGE', `--workload-port ${opts.workloadPort}: expected ports`);
      const g = globalOptions(cmd);
      const certDir = opts.certDir === undefined ? undefined : resolve(opts.certDir);
      if (certDir === undefined && (opts.watch === true || opts.api !== undefined)) throw new WeftError('WEFT_ERR_USAGE', '--watch and --api keep a certificate in --cert-dir: give --cert-dir');
      const agent = certDir === undefined ? undefined : await startCertAgent(certDir, (opts.api ?? serverOf(g)).replace(/\/+$/, ''), joinTokenOf(g.token));
      // The identity the certificate names: peers check the server's SPIFFE ID against its Workload's service account.
      const sa = agent?.current()?.spiffeId.split('/sa/')[1];
      const json = grpcBootstrap({
        service: opts.service,
        namespace: opts.namespace,
        xdsAddress: opts.xds,
        ...(opts.grpcServer ? { server: true } : {}),
        ...(opts.nodeId !== undefined ? { nodeId: opts.nodeId } : {}),
        ...(opts.workloadAddress !== undefined ? { workloadAddress: opts.workloadAddress } : {}),
        ...(ports !== undefined ? { workloadPorts: ports } : {}),
        ...(certDir !== undefined ? { certDir, refreshIntervalSeconds: refresh } : {}),
        ...(sa !== undefined ? { serviceAccount: sa } : {}),
      });
      if (opts.out !== undefined) await writeAtomic(resolve(opts.out), toJson(json), 0o644);
      else process.stdout.write(toJson(json));
      if (agent === undefined) return;
      if (opts.watch !== true) {
        agent.close();
        return;
      }
      // On stdout when it is free (--out): scripts wait for this line before starting the app.
      const line = `weft bootstrap: keeping ${certDir} fresh for ${agent.current()?.spiffeId ?? '?'}; stop with SIGTERM\n`;
      (opts.out !== undefined ? process.stdout : process.stderr).write(line);
      // The renewal timers are unref'd (they must not hold a proxy open); an agent lives until told to stop.
      const alive = setInterval(() => {}, 2 ** 30);
      const stop = (): void => {
        clearInterval(alive);
        agent.close();
        process.exit(0);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
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

function joinTokenOf(flag: string | undefined): string {
  const env = process.env.WEFT_JOIN_TOKEN;
  const t = flag ?? (env !== undefined && env !== '' ? env : undefined);
  if (t === undefined) throw new WeftError('WEFT_ERR_USAGE', '--cert-dir needs a join token: --token T (weft token create) or WEFT_JOIN_TOKEN');
  return t;
}

/** temp file, fsync by writeFile's flush, rename: a reader sees the old file or the new one, never half of one. */
async function writeAtomic(path: string, text: string, mode: number): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, text, { mode, flush: true });
  await chmod(tmp, mode);
  await rename(tmp, path);
}

/**
 * The certificate files of a proxyless gRPC app (docs/adr/0006): the key is
 * made here and never leaves this machine; the SVID comes from the CA's CSR
 * endpoint with the join token, and is renewed (new key) at about half life.
 * gRPC's file_watcher re-reads the files every refresh_interval. The key is
 * renamed into place before the certificate, so the window in which gRPC
 * could read a new key with the old certificate is one rename.
 */
async function startCertAgent(dir: string, apiUrl: string, joinToken: string): Promise<IdentityManager> {
  const { createIdentityManager } = await import('../../proxy/identity/index.js');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const { GRPC_CERT_FILES } = await import('../../control/xds/grpc-bootstrap.js');
  const write = async (svid: WorkloadSvid): Promise<void> => {
    await writeAtomic(join(dir, GRPC_CERT_FILES.ca), svid.bundlePem, 0o644);
    await writeAtomic(join(dir, GRPC_CERT_FILES.privateKey), svid.keyPem, 0o600);
    await writeAtomic(join(dir, GRPC_CERT_FILES.certificate), svid.chainPem, 0o644);
  };
  const identity = createIdentityManager({ apiUrl, joinToken });
  // One write at a time, in order: two renames of the same temp file would race.
  let writing = Promise.resolve();
  const queue = (svid: WorkloadSvid): void => {
    writing = writing.then(() => write(svid)).catch((err: unknown) => {
      process.stderr.write(`weft bootstrap: writing ${dir} failed: ${err instanceof Error ? err.message : String(err)}\n`);
    });
  };
  identity.on('rotated', queue);
  identity.on('bundle', () => {
    const svid = identity.current();
    if (svid !== undefined) queue(svid);
  });
  await identity.start();
  // The first files are on disk before the bootstrap is printed, so the app never starts without them.
  await writing;
  // A root rotation changes the bundle before the next renewal: follow it (the bundle is public).
  const poll = setInterval(() => {
    fetch(`${apiUrl}/ca/bundle`, { signal: AbortSignal.timeout(10_000) })
      .then(async (r) => (r.ok ? identity.setTrustBundle(await r.text()) : undefined))
      .catch(() => {});
  }, BUNDLE_POLL_MS);
  poll.unref();
  const close = identity.close.bind(identity);
  identity.close = () => {
    clearInterval(poll);
    close();
  };
  return identity;
}

/** How often `--watch` re-reads the trust bundle. */
const BUNDLE_POLL_MS = 60_000;
