/**
 * Turning a proxy into a transparent one (Linux, root, inside the workload's network
 * namespace): the iptables capture (iptables.ts), the original-destination dispatch
 * (../listeners/original-dst.ts) and the proxy's own group, which is how the rules
 * tell its traffic from the application's.
 *
 * Why a gid and not a uid: Istio runs Envoy as uid 1337 and installs the rules from a
 * separate privileged init container. Weft installs them from the proxy itself, which
 * needs CAP_NET_ADMIN, i.e. uid 0 here; changing only the gid keeps that while giving
 * every socket the proxy opens afterwards (fsgid at creation time is what
 * `-m owner --gid-owner` matches) an owner the application does not have.
 */
import { platform } from 'node:os';
import { WeftError } from '../../lib/errors.js';
import { ensureOriginalDstSupport } from './original-dst.js';
import { CAPTURE_ENV } from '../listeners/original-dst.js';
import { applyCapture, defaultCaptureOptions, removeCapture, removeCaptureSync, type CaptureOptions, type IptablesRunner, systemIptables } from './iptables.js';

export interface CaptureHandle {
  /** Removes the rules (idempotent). */
  remove(): Promise<void>;
}

/**
 * Installs the capture rules in the current network namespace (replacing any a crashed
 * proxy left) and removes them when this process exits, however it exits short of
 * SIGKILL; after a SIGKILL the next install cleans up.
 */
export async function installCapture(over: Partial<CaptureOptions> = {}, runner: IptablesRunner = systemIptables): Promise<CaptureHandle> {
  const opts = defaultCaptureOptions(over);
  await applyCapture(opts, runner);
  let removed = false;
  const onExit = (): void => {
    if (!removed) removeCaptureSync();
  };
  process.once('exit', onExit);
  return {
    async remove() {
      if (removed) return;
      removed = true;
      process.off('exit', onExit);
      await removeCapture(runner);
    },
  };
}

export interface TransparentOptions {
  /** The group the proxy switches to; its sockets are excluded from capture. */
  proxyGid: number;
  capture: Partial<CaptureOptions>;
}

/** What `weft run --transparent` needs: the app's gid and the hook that installs the capture (src/run/hooks.ts). */
export interface TransparentRun {
  /** Spawn the app with this gid: the process itself now runs as the proxy gid, which capture skips. */
  readonly appGid: number;
  /** A BeforeAppStart hook (structurally: proxy/ does not import run/): rules in after the sidecar is up, out after the app exited. */
  hook(ctx: { outboundPort: number; inboundPort: number }): Promise<{ afterAppExit(): Promise<void> }>;
}

/**
 * For `weft run --transparent`, where the sidecar lives in the same process as the
 * launcher: call before the sidecar opens any socket. Switches this process to the
 * proxy gid and marks it transparent; the rules are installed by the returned hook
 * once the sidecar's ports are known.
 */
export function prepareTransparentRun(o: { proxyGid: number; capture?: Partial<CaptureOptions> }): TransparentRun {
  const appGid = process.getgid?.() ?? 0;
  if (appGid === o.proxyGid) throw new WeftError('WEFT_ERR_USAGE', `--proxy-gid ${o.proxyGid} is the group weft run itself runs as: the app would not be captured`);
  checkPrivileges(o.proxyGid);
  switchGroup(o.proxyGid);
  return {
    appGid,
    async hook(ctx) {
      const h = await installCapture({ ...o.capture, outboundPort: ctx.outboundPort, inboundPort: ctx.inboundPort, proxyGids: [o.proxyGid] });
      return { afterAppExit: () => h.remove() };
    },
  };
}

function checkPrivileges(proxyGid: number): void {
  if (platform() !== 'linux') throw new WeftError('WEFT_ERR_CAPTURE', '--transparent needs Linux (iptables and SO_ORIGINAL_DST)');
  if (process.getuid?.() !== 0) throw new WeftError('WEFT_ERR_CAPTURE', '--transparent needs root (CAP_NET_ADMIN) to install the iptables rules in this network namespace');
  if (!Number.isInteger(proxyGid) || proxyGid < 0) throw new WeftError('WEFT_ERR_USAGE', `--proxy-gid: want a group id, got "${proxyGid}"`);
  if (proxyGid === 0) throw new WeftError('WEFT_ERR_USAGE', '--proxy-gid: 0 would exclude every root application from capture; use a dedicated group (default 1337)');
  ensureOriginalDstSupport();
}

/** setgroups first, while still allowed; then the gid every later socket is created with. */
function switchGroup(proxyGid: number): void {
  process.setgroups?.([proxyGid]);
  process.setgid?.(proxyGid);
  process.env[CAPTURE_ENV] = 'transparent';
}

/**
 * Called first thing by `weft proxy --transparent`, before any socket exists: checks
 * the platform and privileges, switches to the proxy gid, marks the process (and its
 * workers) transparent, and installs the rules.
 */
export async function enableTransparentProxy(o: TransparentOptions): Promise<CaptureHandle> {
  checkPrivileges(o.proxyGid);
  switchGroup(o.proxyGid);
  try {
    return await installCapture({ ...o.capture, proxyGids: [o.proxyGid] });
  } catch (e) {
    if (e instanceof WeftError) throw e;
    throw new WeftError('WEFT_ERR_CAPTURE', `installing the capture rules failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}
