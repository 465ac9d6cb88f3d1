/**
 * Virtual IPs of Services for transparent mode: an unchanged application resolves
 * `catalog.default` to an address, connects to it, and iptables sends the connection
 * to the proxy, which routes by Host (HTTP) or by original destination port (TCP).
 *
 * Istio auto-allocates such addresses from the reserved class E range 240.240.0.0/16
 * (never routed on the Internet, so a leak goes nowhere). Weft uses the same range but
 * computes the address from the Service's name (FNV-1a), so every host, the CLI and
 * the tests agree on it without storing or distributing anything. Two Services can
 * share an address; that is harmless here because the address only gets the packet to
 * the proxy: HTTP is routed by its Host header and TCP by the destination port (one
 * TCP Service per port per proxy, as in explicit mode).
 */

export const VIP_PREFIX = '240.240.';
export const VIP_CIDR = '240.240.0.0/16';

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** `240.240.x.y` with y in 1..254 (no .0 / .255, which some tools treat as special). */
export function serviceVip(name: string, namespace: string): string {
  const n = fnv1a(`${name}.${namespace}`) % (256 * 254);
  return `${VIP_PREFIX}${Math.floor(n / 254)}.${(n % 254) + 1}`;
}

export function isServiceVip(address: string): boolean {
  return address.startsWith(VIP_PREFIX);
}

/** /etc/hosts lines for Services: `VIP name.ns name.ns.svc name.ns.svc.cluster.local`. */
export function hostsEntries(services: readonly { name: string; namespace: string }[]): string {
  const lines = ['127.0.0.1 localhost', '::1 localhost ip6-localhost ip6-loopback'];
  for (const s of services) {
    const h = `${s.name}.${s.namespace}`;
    lines.push(`${serviceVip(s.name, s.namespace)} ${h} ${h}.svc ${h}.svc.cluster.local`);
  }
  return `${lines.join('\n')}\n`;
}
