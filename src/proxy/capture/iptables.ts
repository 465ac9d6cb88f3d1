/**
 * Transparent capture, the istio-iptables way: NAT rules in the workload's network
 * namespace send the application's outbound TCP to the proxy's outbound listener
 * (15001) and inbound TCP to its inbound listener (15006).
 *
 * The rule set is plain data (`captureRules`), so it is unit-tested without root, and
 * applied in one `iptables-restore --noflush` transaction (all or nothing). Every rule
 * lives in Weft's own chains (WEFT_INBOUND, WEFT_IN_REDIRECT, WEFT_OUTPUT,
 * WEFT_REDIRECT) reached by one jump from PREROUTING and one from OUTPUT, so removal
 * is exact: delete those jumps, flush and delete the chains. Removal is idempotent
 * and is also run before installing, so the rules a crashed proxy left behind are
 * replaced instead of stacked.
 *
 * The proxy's own connections must not be captured again (a loop): they are told
 * apart by the owner of the socket, `--gid-owner` / `--uid-owner` (Istio runs its
 * proxy as uid and gid 1337). Weft's proxy keeps uid 0 (it needs CAP_NET_ADMIN for
 * these rules) and runs under a dedicated gid, so the gid match is the one that
 * matters; a uid can be excluded too.
 */
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { WeftError } from '../../lib/errors.js';

const run = promisify(execFile);

export const CHAIN_INBOUND = 'WEFT_INBOUND';
export const CHAIN_IN_REDIRECT = 'WEFT_IN_REDIRECT';
export const CHAIN_OUTPUT = 'WEFT_OUTPUT';
export const CHAIN_REDIRECT = 'WEFT_REDIRECT';
const CHAINS = [CHAIN_INBOUND, CHAIN_IN_REDIRECT, CHAIN_OUTPUT, CHAIN_REDIRECT] as const;

/** The gid (and uid) Istio's proxy runs as; Weft keeps the number so operators recognise it. */
export const DEFAULT_PROXY_GID = 1337;

export interface CaptureOptions {
  /** Outbound listener port (redirect target of the app's outbound TCP). */
  outboundPort: number;
  /** Inbound listener port (redirect target of inbound TCP). */
  inboundPort: number;
  /** Sockets owned by these gids / uids are the proxy's: never captured. At least one entry overall. */
  proxyGids: readonly number[];
  proxyUids: readonly number[];
  /** Inbound destination ports left alone (admin, the proxy's own listeners, control plane, ssh...). */
  excludeInboundPorts: readonly number[];
  /** Outbound destination ports left alone. */
  excludeOutboundPorts: readonly number[];
  /** Outbound destinations (CIDRs) left alone; loopback is always left alone. */
  excludeOutboundCidrs: readonly string[];
  /** When false, only outbound traffic is captured. */
  captureInbound: boolean;
}

/** Ports a sidecar host should never redirect inbound: ssh, the proxy's admin/outbound/inbound, the control plane's xDS and API. */
export const DEFAULT_EXCLUDE_INBOUND = [22, 15000, 15001, 15006, 15010, 15020] as const;

export function defaultCaptureOptions(over: Partial<CaptureOptions> = {}): CaptureOptions {
  return {
    outboundPort: 15001,
    inboundPort: 15006,
    proxyGids: [DEFAULT_PROXY_GID],
    proxyUids: [],
    excludeInboundPorts: [...DEFAULT_EXCLUDE_INBOUND],
    excludeOutboundPorts: [],
    excludeOutboundCidrs: [],
    captureInbound: true,
    ...over,
  };
}

/** One rule as iptables arguments (without `-t nat`); `[chain, ...match, '-j', target]`. */
export interface Rule {
  readonly chain: string;
  readonly spec: readonly string[];
}

/** The jumps from the built-in chains into Weft's chains: the only rules outside them. */
export function jumpRules(o: Pick<CaptureOptions, 'captureInbound'>): Rule[] {
  const out: Rule[] = [{ chain: 'OUTPUT', spec: ['-p', 'tcp', '-j', CHAIN_OUTPUT] }];
  if (o.captureInbound) out.unshift({ chain: 'PREROUTING', spec: ['-p', 'tcp', '-j', CHAIN_INBOUND] });
  return out;
}

function port(p: number, what: string): string {
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new WeftError('WEFT_ERR_USAGE', `${what}: ${p} is not a port (1-65535)`);
  return String(p);
}

function id(n: number, what: string): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff_fffe) throw new WeftError('WEFT_ERR_USAGE', `${what}: ${n} is not a uid/gid`);
  return String(n);
}

const CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/;
function cidr(c: string): string {
  const m = CIDR.exec(c);
  if (m === null || m.slice(1, 5).some((o) => Number(o) > 255) || (m[5] !== undefined && Number(m[5]) > 32)) {
    throw new WeftError('WEFT_ERR_USAGE', `capture: "${c}" is not an IPv4 address or CIDR`);
  }
  return c;
}

/** Every rule inside Weft's chains, in order. Throws WEFT_ERR_USAGE on a bad option. */
export function captureRules(o: CaptureOptions): Rule[] {
  if (o.proxyGids.length === 0 && o.proxyUids.length === 0) {
    throw new WeftError('WEFT_ERR_USAGE', 'capture: the proxy must be told apart by a gid or uid, or its own traffic would loop back into it');
  }
  const r: Rule[] = [];
  const add = (chain: string, ...spec: string[]): void => void r.push({ chain, spec });
  if (o.captureInbound) {
    for (const p of o.excludeInboundPorts) add(CHAIN_INBOUND, '-p', 'tcp', '--dport', port(p, 'excluded inbound port'), '-j', 'RETURN');
    add(CHAIN_INBOUND, '-p', 'tcp', '-j', CHAIN_IN_REDIRECT);
    add(CHAIN_IN_REDIRECT, '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', port(o.inboundPort, 'inbound port'));
  }
  add(CHAIN_REDIRECT, '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', port(o.outboundPort, 'outbound port'));
  // The proxy's own connections (upstream, xDS, passthrough) go where they were sent.
  for (const u of o.proxyUids) add(CHAIN_OUTPUT, '-m', 'owner', '--uid-owner', id(u, 'proxy uid'), '-j', 'RETURN');
  for (const g of o.proxyGids) add(CHAIN_OUTPUT, '-m', 'owner', '--gid-owner', id(g, 'proxy gid'), '-j', 'RETURN');
  // Loopback is the app talking to itself or to its proxy in explicit mode.
  add(CHAIN_OUTPUT, '-d', '127.0.0.0/8', '-j', 'RETURN');
  for (const p of o.excludeOutboundPorts) add(CHAIN_OUTPUT, '-p', 'tcp', '--dport', port(p, 'excluded outbound port'), '-j', 'RETURN');
  for (const c of o.excludeOutboundCidrs) add(CHAIN_OUTPUT, '-d', cidr(c), '-j', 'RETURN');
  add(CHAIN_OUTPUT, '-j', CHAIN_REDIRECT);
  return r;
}

/** The `iptables-restore --noflush` input that creates the chains, fills them and adds the jumps. */
export function restoreScript(o: CaptureOptions): string {
  const lines = ['*nat'];
  const used = o.captureInbound ? CHAINS : CHAINS.filter((c) => c !== CHAIN_INBOUND && c !== CHAIN_IN_REDIRECT);
  for (const c of used) lines.push(`:${c} - [0:0]`);
  for (const rule of captureRules(o)) lines.push(['-A', rule.chain, ...rule.spec].join(' '));
  for (const rule of jumpRules(o)) lines.push(['-A', rule.chain, ...rule.spec].join(' '));
  lines.push('COMMIT', '');
  return lines.join('\n');
}

export interface IptablesRunner {
  /** Runs `iptables ARGS`; rejects on a non-zero exit. */
  iptables(args: readonly string[]): Promise<void>;
  /** Runs `iptables-restore ARGS` with `input` on stdin. */
  restore(args: readonly string[], input: string): Promise<void>;
}

/** The real binaries. `-w` waits for the xtables lock instead of failing when another tool holds it. */
export const systemIptables: IptablesRunner = {
  async iptables(args) {
    await run('iptables', ['-w', '5', ...args]);
  },
  restore(args, input) {
    return new Promise((resolve, reject) => {
      const child = execFile('iptables-restore', ['-w', '5', ...args], (err, _out, stderr) => {
        if (err === null) resolve();
        else reject(new WeftError('WEFT_ERR_CAPTURE', `iptables-restore failed: ${String(stderr).trim() || err.message}`, { cause: err }));
      });
      child.stdin?.end(input);
    });
  },
};

/**
 * The commands that remove every trace of Weft's capture from the nat table: the
 * jumps (`repeat`: deleted until none is left, since a crash between two installs can
 * leave duplicates), then the chains. Each may fail when its object is absent.
 */
export function removalCommands(): { args: string[]; repeat: boolean }[] {
  const out: { args: string[]; repeat: boolean }[] = [];
  for (const rule of jumpRules({ captureInbound: true })) out.push({ args: ['-t', 'nat', '-D', rule.chain, ...rule.spec], repeat: true });
  for (const c of CHAINS) out.push({ args: ['-t', 'nat', '-F', c], repeat: false });
  for (const c of CHAINS) out.push({ args: ['-t', 'nat', '-X', c], repeat: false });
  return out;
}

const MAX_DUPLICATES = 64;

/** Removes Weft's capture; nothing there is not an error. */
export async function removeCapture(runner: IptablesRunner = systemIptables): Promise<void> {
  for (const c of removalCommands()) {
    for (let i = 0; i < (c.repeat ? MAX_DUPLICATES : 1); i++) {
      try {
        await runner.iptables(c.args);
      } catch {
        break;
      }
    }
  }
}

/** The same, synchronously: for process 'exit', where nothing async runs any more. */
export function removeCaptureSync(): void {
  for (const c of removalCommands()) {
    for (let i = 0; i < (c.repeat ? MAX_DUPLICATES : 1); i++) {
      if (spawnSync('iptables', ['-w', '5', ...c.args], { stdio: 'ignore' }).status !== 0) break;
    }
  }
}

/** Replaces whatever capture is there with the one `o` describes, in one transaction. */
export async function applyCapture(o: CaptureOptions, runner: IptablesRunner = systemIptables): Promise<void> {
  const script = restoreScript(o);
  await removeCapture(runner);
  await runner.restore(['--noflush'], script);
}

/** Whether Weft's OUTPUT chain exists in this namespace (for tests and `weft` diagnostics). */
export async function captureInstalled(runner: IptablesRunner = systemIptables): Promise<boolean> {
  try {
    await runner.iptables(['-t', 'nat', '-S', CHAIN_OUTPUT]);
    return true;
  } catch {
    return false;
  }
}
