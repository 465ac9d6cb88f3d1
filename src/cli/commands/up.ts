import { resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { globalOptions, dataDirOf } from '../context.js';

interface UpCommandOptions {
  apiAddr: string;
  xdsAddr?: string;
  demo: boolean;
  traffic: boolean;
  trafficRate: number;
  logLevel?: string;
  readyTimeout: number;
  demoDir?: string;
}

/** How often the traffic summary is printed. */
const REPORT_EVERY_MS = 30_000;

function rate(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > 1000) throw new InvalidArgumentError(`want requests per second (0 < n ≤ 1000), got "${v}"`);
  return n;
}

function ms(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1000) throw new InvalidArgumentError(`want milliseconds (≥ 1000), got "${v}"`);
  return n;
}

function hostPort(v: string): string {
  if (!/^(?:\[[^\]]+\]|[^:[\]]+):\d{1,5}$/.test(v)) throw new InvalidArgumentError(`want host:port, got "${v}"`);
  return v;
}

export function registerUp(program: Command): void {
  program
    .command('up')
    .description('the whole mesh on this machine: control plane, dashboard, and a demo application with a sidecar per workload; Ctrl-C stops it all')
    .option('--api-addr <host:port>', 'HTTP API and dashboard (port 0 picks a free one)', hostPort, '127.0.0.1:15020')
    .option('--xds-addr <host:port>', 'xDS address (default 127.0.0.1:15010, or a free port when that one is taken)', hostPort)
    .option('--no-demo', 'start the control plane alone')
    .option('--no-traffic', 'no traffic generator')
    .option('--traffic-rate <n>', 'requests per second the traffic generator sends to web', rate, 20)
    .option('--ready-timeout <ms>', 'how long each demo workload may take to start', ms, 90_000)
    .option('--demo-dir <dir>', 'another demo: its *.yaml files are applied and apps/ holds the scripts (default: the package\'s examples/demo)')
    .option('--log-level <level>', 'log level of the control plane and sidecars (default: WEFT_LOG_LEVEL or warn)')
    .addHelpText('after', `
The data directory is --data-dir, else WEFT_DATA_DIR, else ./.weft (the admin token is
DATA_DIR/admin-token: other weft commands find it with --data-dir).
The demo (examples/demo/): web → catalog (HTTPRoute 80/20 between catalog-v1 and
catalog-v2, one v2 instance flaky) → inventory (gRPC), and web → ledger (TCP); mTLS,
authorization, retries and outlier detection as the YAML there says. Its apps listen on
free ports. Prints one line when everything is up:
  weft up ready: api=<url> xds=<host:port> dashboard=<url> web=<url>`)
    .action(async (opts: UpCommandOptions, cmd: Command) => {
      const g = globalOptions(cmd);
      const dataDir = resolve(dataDirOf(g) ?? '.weft');
      const logLevel = opts.logLevel ?? process.env.WEFT_LOG_LEVEL ?? (g.verbose === true ? 'debug' : 'warn');
      const say = (line: string): void => void process.stdout.write(`${line}\n`);
      const { startUp } = await import('../../up/mesh-up.js');
      // Signals that arrive while starting are handled once start-up settles.
      const starting = new AbortController();
      let onSignal: (s: NodeJS.Signals) => void = (s) => {
        say(`${s}: stopping what was started`);
        starting.abort();
      };
      process.on('SIGINT', (s) => onSignal(s));
      process.on('SIGTERM', (s) => onSignal(s));
      const up = await startUp({
        dataDir,
        apiAddr: opts.apiAddr,
        xdsAddr: opts.xdsAddr ?? '127.0.0.1:15010',
        xdsAddrGiven: opts.xdsAddr !== undefined,
        demo: opts.demo,
        traffic: opts.traffic,
        trafficRate: opts.trafficRate,
        logLevel,
        readyTimeoutMs: opts.readyTimeout,
        drainMs: 5000,
        say,
        signal: starting.signal,
        ...(opts.demoDir !== undefined ? { demoDir: resolve(opts.demoDir) } : {}),
      }).catch((e: unknown) => {
        if (!starting.signal.aborted) throw e;
        say('weft up: stopped before it was up');
        process.exit(130);
      });
      let stopping = false;
      onSignal = (s) => {
        if (stopping) {
          say(`${s} again: killing everything now`);
          up.kill();
          process.exit(130);
        }
        stopping = true;
        say(`${s}: stopping (traffic, apps and their sidecars, control plane); Ctrl-C again to kill at once`);
        up.stop().then(
          () => {
            say('weft up: stopped, nothing left running');
            process.exit(0);
          },
          (e: unknown) => {
            process.stderr.write(`error: stopping failed: ${e instanceof Error ? e.message : String(e)}\n`);
            up.kill();
            process.exit(1);
          },
        );
      };
      printSummary(up, dataDir, opts, say);
      if (up.traffic !== undefined) {
        const t = up.traffic;
        setInterval(() => {
          const s = t.stats();
          const versions = Object.entries(s.versions).sort().map(([v, n]) => `${v}=${n}`).join(' ');
          say(`traffic: ${s.sent} sent, ${s.ok} ok, ${s.failed} failed; catalog versions ${versions || '-'}`);
        }, REPORT_EVERY_MS).unref();
      }
      // Keep running until a signal: the control plane's servers hold the event loop.
    });
}

function printSummary(up: Awaited<ReturnType<typeof import('../../up/mesh-up.js').startUp>>, dataDir: string, opts: UpCommandOptions, say: (l: string) => void): void {
  const lines = [
    '',
    `Weft is running (data: ${dataDir})`,
    `  dashboard      ${up.dashboardUrl}`,
    `  control plane  api ${up.apiUrl}  xds ${up.xdsAddress}`,
  ];
  for (const w of up.workloads) {
    const scheme = w.workload.kind === 'http' ? 'http://' : w.workload.kind === 'grpc' ? 'grpc ' : 'tcp ';
    lines.push(`  ${w.workload.name.padEnd(13)}  ${scheme}${w.workload.address}:${w.workload.port}  pid ${w.child.pgid}${w.adminUrl !== undefined ? `  sidecar admin ${w.adminUrl}` : ''}`);
  }
  if (up.webUrl !== undefined) {
    lines.push(
      opts.traffic ? `  traffic        ${opts.trafficRate} req/s to web` : '  traffic        off (--no-traffic)',
      '',
      'Try:',
      `  curl ${up.webUrl}                       # web → catalog (80/20 v1/v2) → inventory, and ledger`,
      `  curl -H 'x-canary: true' ${up.webUrl}   # always catalog v2`,
      `  npx weft get services --server ${up.apiUrl}`,
      `  npx weft proxy-status --server ${up.apiUrl}`,
    );
  }
  lines.push('', 'Ctrl-C stops everything.', `weft up ready: api=${up.apiUrl} xds=${up.xdsAddress} dashboard=${up.dashboardUrl}${up.webUrl !== undefined ? ` web=${up.webUrl}` : ''}`);
  for (const l of lines) say(l);
}
