// Test hosts in network namespaces: a private "switch" namespace holds a bridge, and
// each host namespace gets one veth pair into it and an address in 10.250.<run>.0/24.
// Nothing is added to the machine's own namespace except the namespace names
// themselves (and /etc/netns/<ns>/ for a hosts file), so traffic can only go between
// the namespaces a test made, and `teardown()` (namespace deletion takes the veths and
// the bridge with it) leaves nothing behind, even after a failed test.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { createInterface } from 'node:readline';

const run = promisify(execFile);

/** Why namespaces cannot be made here, or undefined when they can. */
export function netnsSkipReason(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'network namespaces need root (run as root, as .ci/run does)';
  if (spawnSync('ip', ['-V'], { stdio: 'ignore' }).status !== 0) return '`ip` (iproute2) is not installed';
  const probe = `weft-probe-${process.pid}`;
  const add = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (add.status !== 0) return `this machine cannot create network namespaces: ${add.stderr.trim()}`;
  spawnSync('ip', ['netns', 'del', probe], { stdio: 'ignore' });
  return undefined;
}

/** Why iptables capture cannot be tested here (on top of netnsSkipReason). */
export function iptablesSkipReason(): string | undefined {
  if (spawnSync('iptables', ['--version'], { stdio: 'ignore' }).status !== 0) return 'iptables is not installed';
  if (spawnSync('iptables-restore', ['--version'], { stdio: 'ignore' }).status !== 0) return 'iptables-restore is not installed';
  return undefined;
}

async function ip(...args: string[]): Promise<void> {
  try {
    await run('ip', args);
  } catch (e) {
    const err = e as { stderr?: string };
    throw new Error(`ip ${args.join(' ')}: ${err.stderr?.trim() ?? String(e)}`, { cause: e });
  }
}

export interface TestHost {
  /** Namespace name, e.g. weft-1234-a. */
  readonly ns: string;
  /** Its address on the test network. */
  readonly address: string;
  /** Interface name inside the namespace. */
  readonly iface: string;
  /** The bridge port of its link, in the switch namespace (cutting it cuts the host off). */
  readonly switchPort: string;
}

export interface TestNetwork {
  readonly hosts: readonly TestHost[];
  readonly subnet: string;
  /** /etc/netns/<ns>/hosts: what the host's processes see as /etc/hosts (when it exists at their start). */
  hostsPath(host: TestHost): string;
  /** Takes a host's link down (or up again) at the switch: its traffic goes nowhere. */
  setLink(host: TestHost, up: boolean): Promise<void>;
  /** Writes /etc/netns/<ns>/hosts, which `ip netns exec` shows the host's processes as /etc/hosts. */
  writeHosts(host: TestHost, text: string): void;
  /** Deletes every namespace and file made; safe to call twice. */
  teardown(): Promise<void>;
}

let runCounter = 0;

/**
 * Creates `names.length` hosts (namespaces `weft-<pid>-<name>`) on one bridge.
 * The third octet is derived from the pid so that two test files running at once use
 * two different subnets (both private to their own namespaces anyway).
 */
export async function createTestNetwork(names: readonly string[]): Promise<TestNetwork> {
  const id = `${process.pid}${runCounter++ === 0 ? '' : `-${runCounter}`}`;
  const octet = (process.pid + runCounter * 7) % 250 + 1;
  const sw = `weft-${id}-sw`;
  const made: string[] = [];
  const hosts: TestHost[] = [];
  const teardown = async (): Promise<void> => {
    for (const ns of made.splice(0).reverse()) {
      spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
    }
  };
  try {
    await ip('netns', 'add', sw);
    made.push(sw);
    await ip('-n', sw, 'link', 'add', 'br0', 'type', 'bridge');
    await ip('-n', sw, 'link', 'set', 'br0', 'up');
    await ip('-n', sw, 'link', 'set', 'lo', 'up');
    for (const [i, name] of names.entries()) {
      const ns = `weft-${id}-${name}`;
      await ip('netns', 'add', ns);
      made.push(ns);
      // Where a hosts file for the namespace goes (ip netns exec bind-mounts /etc/netns/NS/*).
      mkdirSync(`/etc/netns/${ns}`, { recursive: true });
      const iface = 'eth0';
      const port = `p-${name}`.slice(0, 15);
      // Created inside the host namespace, then one end is moved to the switch.
      await ip('-n', ns, 'link', 'add', iface, 'type', 'veth', 'peer', 'name', port);
      await ip('-n', ns, 'link', 'set', port, 'netns', sw);
      await ip('-n', sw, 'link', 'set', port, 'master', 'br0');
      await ip('-n', sw, 'link', 'set', port, 'up');
      const address = `10.250.${octet}.${i + 1}`;
      await ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', iface);
      await ip('-n', ns, 'link', 'set', iface, 'up');
      await ip('-n', ns, 'link', 'set', 'lo', 'up');
      hosts.push({ ns, address, iface, switchPort: port });
    }
  } catch (e) {
    await teardown();
    throw e;
  }
  return {
    hosts,
    subnet: `10.250.${octet}.0/24`,
    async setLink(host, up) {
      await ip('-n', sw, 'link', 'set', host.switchPort, up ? 'up' : 'down');
    },
    hostsPath: (host) => `/etc/netns/${host.ns}/hosts`,
    writeHosts(host, text) {
      mkdirSync(`/etc/netns/${host.ns}`, { recursive: true });
      writeFileSync(`/etc/netns/${host.ns}/hosts`, text);
    },
    teardown,
  };
}

/** Runs a command inside a host to completion (bounded), returning its output. */
export async function execIn(host: TestHost, cmd: string, args: readonly string[], timeoutMs = 20_000): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run('ip', ['netns', 'exec', host.ns, cmd, ...args], { timeout: timeoutMs, maxBuffer: 8 << 20 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? String(e) };
  }
}

/** A long-running process inside a host. */
export interface NsProcess {
  readonly name: string;
  readonly proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  readonly exited: Promise<number | string>;
}

const started = new Set<ChildProcess>();

/**
 * Starts `cmd args` inside a host (`ip netns exec` execs it, so the pid is the
 * command's own) and resolves on the first stdout line matching `ready`.
 */
export function startIn(host: TestHost, name: string, cmd: string, args: readonly string[], ready: RegExp, opts: { env?: NodeJS.ProcessEnv; gid?: number; timeoutMs?: number } = {}): Promise<{ p: NsProcess; match: RegExpExecArray }> {
  return new Promise((resolve, reject) => {
    const proc = spawn('ip', ['netns', 'exec', host.ns, cmd, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(opts.env !== undefined ? { env: opts.env } : {}),
      ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
    });
    started.add(proc);
    let out = '';
    let err = '';
    proc.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
    const exited = new Promise<number | string>((res) => proc.once('exit', (code, sig) => { started.delete(proc); res(code ?? sig ?? 'unknown'); }));
    const p: NsProcess = { name, proc, stdout: () => out, stderr: () => err, exited };
    let done = false;
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      reject(new Error(`${name}: not ready within ${timeoutMs} ms\nstdout:\n${out}\nstderr:\n${err}`));
    }, timeoutMs);
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      out += `${line}\n`;
      const m = ready.exec(line);
      if (m !== null && !done) {
        done = true;
        clearTimeout(timer);
        resolve({ p, match: m });
      }
    });
    void exited.then((how) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(new Error(`${name} exited (${how}) before it was ready\nstdout:\n${out}\nstderr:\n${err}`));
    });
  });
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves with how it exited. */
export async function stopProcess(p: NsProcess, graceMs = 10_000): Promise<number | string> {
  if (p.proc.exitCode !== null || p.proc.signalCode !== null) return p.exited;
  p.proc.kill('SIGTERM');
  const t = setTimeout(() => p.proc.kill('SIGKILL'), graceMs);
  try {
    return await p.exited;
  } finally {
    clearTimeout(t);
  }
}

/** SIGKILL to every process startIn started that is still running. */
export async function killAllInNs(): Promise<void> {
  const waits: Promise<void>[] = [];
  for (const proc of started) {
    if (proc.exitCode !== null || proc.signalCode !== null) continue;
    waits.push(new Promise((res) => proc.once('exit', () => res())));
    proc.kill('SIGKILL');
  }
  await Promise.all(waits);
  started.clear();
}

/** An HTTP app that says who it is and who called it (remote address): `NAME from ADDR`. */
const HTTP_APP = `const [name, host, port] = process.argv.slice(1);
require('node:http').createServer((q, s) => {
  s.setHeader('x-app', name);
  s.end(name + ' from ' + q.socket.remoteAddress + '\\n');
}).listen(Number(port), host, () => console.log('app ready ' + name));
process.on('SIGTERM', () => process.exit(0));`;

/** A TCP app that answers the first bytes it gets with `NAME:BYTES` and closes. */
const TCP_APP = `const [name, host, port] = process.argv.slice(1);
require('node:net').createServer((s) => {
  s.on('error', () => {});
  s.once('data', (d) => s.end(name + ':' + d));
}).listen(Number(port), host, () => console.log('app ready ' + name));
process.on('SIGTERM', () => process.exit(0));`;

export function startHttpApp(host: TestHost, name: string, bind: string, port: number): Promise<NsProcess> {
  return startIn(host, `app ${name}`, process.execPath, ['-e', HTTP_APP, name, bind, String(port)], /^app ready /).then((r) => r.p);
}

export function startTcpApp(host: TestHost, name: string, bind: string, port: number): Promise<NsProcess> {
  return startIn(host, `app ${name}`, process.execPath, ['-e', TCP_APP, name, bind, String(port)], /^app ready /).then((r) => r.p);
}

/** A TCP client run inside a host: connects to HOST:PORT (names resolved by the host's /etc/hosts), sends `data`, prints the reply. */
export async function tcpRequest(host: TestHost, target: string, port: number, data: string): Promise<string> {
  const script = `const s = require('node:net').connect(${port}, ${JSON.stringify(target)}); let out = '';
s.setTimeout(5000, () => { console.error('timeout'); process.exit(2); });
s.on('error', (e) => { console.error(e.message); process.exit(1); });
s.on('data', (d) => (out += d)); s.on('end', () => { process.stdout.write(out); process.exit(0); }); s.write(${JSON.stringify(data)});`;
  const r = await execIn(host, process.execPath, ['-e', script], 10_000);
  if (r.code !== 0) throw new Error(`tcp ${target}:${port} from ${host.ns}: ${r.stderr.trim()}`);
  return r.stdout;
}
