/**
 * `weft up`: the control plane in this process, then the demo: its YAML applied
 * through the HTTP API, each workload started with `weft run` (a child in its
 * own process group, with a join token minted for its service account), and a
 * bounded traffic generator. stop() undoes it in reverse order.
 */
import { resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WeftError } from '../lib/errors.js';
import { demoWorkloads, readDemoYaml, withPorts, DEMO_SERVICES, type DemoWorkload } from './demo-plan.js';
import { canBind, freePort, waitForPort } from './ports.js';
import { killGroups, spawnInGroup, stopGroups, type GroupChild } from './process-group.js';
import { startTraffic, type Traffic } from './traffic.js';

/** dist/src/up/ → the package root. */
const PACKAGE_ROOT = resolvePath(fileURLToPath(import.meta.url), '../../../..');
export const DEFAULT_DEMO_DIR = resolvePath(PACKAGE_ROOT, 'examples/demo');
const CLI = resolvePath(PACKAGE_ROOT, 'dist/src/cli/main.js');

export interface UpOptions {
  readonly dataDir: string;
  readonly apiAddr: string;
  readonly xdsAddr: string;
  /** Whether --xds-addr was given: a busy default port is then replaced by a free one. */
  readonly xdsAddrGiven: boolean;
  readonly demo: boolean;
  readonly traffic: boolean;
  readonly trafficRate: number;
  readonly logLevel: string;
  readonly demoDir?: string;
  /** How long each workload may take to be up. */
  readonly readyTimeoutMs: number;
  /** Drain time of each sidecar when the demo stops. */
  readonly drainMs: number;
  readonly say: (line: string) => void;
  /** Aborting it (Ctrl-C while starting) stops what was started and rejects. */
  readonly signal?: AbortSignal;
}

export interface WorkloadInfo {
  readonly workload: DemoWorkload;
  readonly child: GroupChild;
  adminUrl?: string;
}

export interface Up {
  readonly apiUrl: string;
  readonly xdsAddress: string;
  readonly dashboardUrl: string;
  readonly workloads: readonly WorkloadInfo[];
  readonly webUrl?: string;
  readonly traffic?: Traffic;
  /** Stops the traffic, the workloads (drain, then SIGKILL after a timeout), then the control plane. */
  stop(): Promise<void>;
  /** SIGKILL to every workload group at once (the second Ctrl-C). */
  kill(): void;
}

function hostPortOf(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(addr);
  if (m === null) throw new WeftError('WEFT_ERR_USAGE', `want host:port, got "${addr}"`);
  return { host: m[1] ?? m[2]!, port: Number(m[3]) };
}

async function postJson<T>(url: string, token: string, body: string, contentType: string): Promise<T> {
  const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': contentType }, body });
  const text = await res.text();
  if (!res.ok) throw new WeftError('WEFT_ERR_UNAVAILABLE', `POST ${url}: ${res.status} ${text.slice(0, 500)}`);
  return JSON.parse(text) as T;
}

/** Where the second instance of a Service can listen on this host, if anywhere. */
async function secondLoopback(): Promise<string | undefined> {
  return (await canBind('127.0.0.2', 0)) ? '127.0.0.2' : undefined;
}

export async function startUp(o: UpOptions): Promise<Up> {
  const api = hostPortOf(o.apiAddr);
  if (api.port !== 0 && !(await canBind(api.host, api.port))) {
    throw new WeftError('WEFT_ERR_USAGE', `${o.apiAddr} is already in use (another weft up or weft control?): stop it, or pass --api-addr with another port (--api-addr 127.0.0.1:0 picks a free one)`);
  }
  let xdsAddr = o.xdsAddr;
  const xds = hostPortOf(xdsAddr);
  if (xds.port !== 0 && !(await canBind(xds.host, xds.port))) {
    if (o.xdsAddrGiven) throw new WeftError('WEFT_ERR_USAGE', `--xds-addr ${xdsAddr} is already in use: pass another port (0 picks a free one)`);
    xdsAddr = `${xds.host}:0`;
    o.say(`note: ${o.xdsAddr} is in use; xDS takes a free port instead`);
  }
  const { startControlPlane } = await import('../control/control-plane.js');
  const cp = await startControlPlane({ dataDir: o.dataDir, apiAddr: o.apiAddr, xdsAddr, logLevel: o.logLevel });
  const dashboardUrl = `${cp.apiUrl}/ui/`;
  const children: GroupChild[] = [];
  const infos: WorkloadInfo[] = [];
  let traffic: Traffic | undefined;
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      await traffic?.stop();
      // Each weft run passes SIGTERM to its app and drains its sidecar; then whatever is left goes.
      await stopGroups(children, o.drainMs + 5000);
      await cp.close();
    })();
    return stopped;
  };
  const base = { apiUrl: cp.apiUrl, xdsAddress: cp.xdsAddress, dashboardUrl, workloads: infos, stop, kill: () => killGroups(children) };
  if (!o.demo) return base;

  const checkAbort = (): void => {
    if (o.signal?.aborted === true) throw new WeftError('WEFT_ERR_USAGE', 'stopped while starting');
  };
  try {
    checkAbort();
    const second = await secondLoopback();
    if (second === undefined) o.say('note: 127.0.0.2 is not available (macOS without a loopback alias?): catalog-v2 runs one (flaky) instance');
    const plan: Record<string, number> = {};
    for (const s of DEMO_SERVICES) plan[s] = await freePort();
    const yaml = withPorts(await readDemoYaml(o.demoDir ?? DEFAULT_DEMO_DIR), plan);
    await postJson(`${cp.apiUrl}/apply`, cp.adminToken, yaml, 'application/yaml');
    const workloads = demoWorkloads(plan, second);
    const tokens = new Map<string, string>();
    for (const sa of new Set(workloads.map((w) => w.serviceAccount))) {
      const t = await postJson<{ token: string }>(`${cp.apiUrl}/ca/tokens`, cp.adminToken, JSON.stringify({ namespace: 'default', serviceAccount: sa, ttl: '24h' }), 'application/json');
      tokens.set(sa, t.token);
    }
    checkAbort();
    const appsDir = resolvePath(o.demoDir ?? DEFAULT_DEMO_DIR, 'apps');
    for (const w of workloads) {
      const info: WorkloadInfo = { workload: w, child: undefined as unknown as GroupChild };
      const lastErr: string[] = [];
      const child = spawnInGroup(w.name, process.execPath, [
        CLI, 'run', '--service', w.service, '--namespace', 'default',
        '--labels', Object.entries(w.labels).map(([k, v]) => `${k}=${v}`).join(','),
        '--service-account', w.serviceAccount, '--port', String(w.port), '--workload-address', w.address,
        '--xds', cp.xdsAddress, '--api', cp.apiUrl, '--drain-timeout', String(o.drainMs), '--log-level', o.logLevel, '--stop-with-parent',
        '--', process.execPath, resolvePath(appsDir, w.script),
      ], {
        env: { ...process.env, ...w.env, WEFT_JOIN_TOKEN: tokens.get(w.serviceAccount)! },
        onLine: (stream, line) => {
          const m = /^weft run ready: .*admin=(\S+)/.exec(line);
          if (m !== null) info.adminUrl = m[1];
          if (stream === 'err') {
            lastErr.push(line);
            if (lastErr.length > 20) lastErr.shift();
          }
          o.say(`[${w.name}] ${line}`);
        },
      });
      (info as { child: GroupChild }).child = child;
      children.push(child);
      infos.push(info);
      void child.exited.then((how) => {
        if (stopped === undefined) o.say(`[${w.name}] exited (${how}) while the demo runs`);
      });
    }
    await Promise.all(infos.map((i) => waitForPort(i.workload.address, i.workload.port, o.readyTimeoutMs, () => {
      if (o.signal?.aborted === true) return 'stopped while starting';
      return i.child.isRunning() ? undefined : `${i.workload.name} exited before it was up`;
    })));
    const web = workloads.find((w) => w.name === 'web')!;
    const webUrl = `http://${web.address}:${web.port}/`;
    if (o.traffic) traffic = startTraffic({ url: webUrl, perSecond: o.trafficRate });
    return { ...base, webUrl, ...(traffic ? { traffic } : {}) };
  } catch (e) {
    await stop();
    throw e;
  }
}
