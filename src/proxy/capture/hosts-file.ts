/**
 * Name resolution for transparent mode without a DNS server: `weft proxy
 * --hosts-file /etc/netns/<ns>/hosts` keeps that file listing every Service the proxy
 * can route to, at its VIP (lib/service-vip.ts). `ip netns exec <ns>` bind-mounts the
 * file over /etc/hosts for the processes it starts, so an unchanged app resolves
 * `catalog.default` through the ordinary resolver (getaddrinfo, curl, node, Go...).
 *
 * The file is rewritten in place (truncate + write, same inode), never renamed:
 * a bind mount keeps pointing at the inode it was made from, so a rename would leave
 * running apps with the old list.
 */
import { readFile, writeFile } from 'node:fs/promises';
import type { Snapshot } from '../config/state.js';
import { hostsEntries } from '../../lib/service-vip.js';

const SERVICE_HOST = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)$/;
const TCP_LISTENER = /^tcp\|([^.|]+)\.([^.:|]+):\d+$/;

/** Every `name.namespace` the proxy has a route or TCP listener for, sorted. */
export function servicesOf(snap: Snapshot): { name: string; namespace: string }[] {
  const seen = new Map<string, { name: string; namespace: string }>();
  for (const rc of snap.routes.values()) {
    for (const vh of rc.virtualHosts) {
      for (const d of vh.domains) {
        const m = SERVICE_HOST.exec(d);
        if (m !== null) seen.set(d, { name: m[1]!, namespace: m[3]! });
      }
    }
  }
  for (const name of snap.listeners.keys()) {
    const m = TCP_LISTENER.exec(name);
    if (m !== null) seen.set(`${m[1]}.${m[2]}`, { name: m[1]!, namespace: m[2]! });
  }
  return [...seen.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
}

export function hostsFileText(snap: Snapshot): string {
  return `# Written by weft proxy --hosts-file: mesh Services at their VIPs (240.240.0.0/16).\n${hostsEntries(servicesOf(snap))}`;
}

/** Writes the file when its content changed; resolves true when it wrote. */
export async function syncHostsFile(path: string, snap: Snapshot): Promise<boolean> {
  const text = hostsFileText(snap);
  const old = await readFile(path, 'utf8').catch(() => undefined);
  if (old === text) return false;
  await writeFile(path, text, { flag: 'w', mode: 0o644 });
  return true;
}

/**
 * Keeps `path` in step with the proxy's snapshot: `onXdsResponse` goes to startProxy
 * (responses before `attach` are caught up by the `sync` that follows it); writes are
 * serialised so an older snapshot never lands after a newer one.
 */
export function followHostsFile(path: string, onError: (e: unknown) => void): {
  attach(snapshot: () => Snapshot): void;
  onXdsResponse(e: { accepted: boolean }): void;
  sync(): Promise<void>;
} {
  let current: (() => Snapshot) | undefined;
  let chain: Promise<unknown> = Promise.resolve();
  const sync = (): Promise<void> => {
    const get = current;
    if (get === undefined) return Promise.resolve();
    const next = chain.then(() => syncHostsFile(path, get())).then(() => undefined, onError);
    chain = next;
    return next;
  };
  return {
    attach(snapshot) { current = snapshot; },
    onXdsResponse(e) { if (e.accepted) void sync(); },
    sync,
  };
}
