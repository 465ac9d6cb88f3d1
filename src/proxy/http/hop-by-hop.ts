/** Hop-by-hop headers (RFC 9110 §7.6.1) and friends that a proxy must not forward. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
]);

/** Extra header names listed in a `Connection` header value (lower-cased), or undefined. */
export function connectionTokens(value: string | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  const out = new Set<string>();
  for (const t of value.split(',')) {
    const n = t.trim().toLowerCase();
    if (n !== '' && n !== 'close' && n !== 'keep-alive') out.add(n);
  }
  return out.size === 0 ? undefined : out;
}

/** rawHeaders minus hop-by-hop ones, HTTP/2 pseudo-headers and the names in `skip`. */
export function filterRawHeaders(raw: readonly string[], extra: Set<string> | undefined, skip: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.charCodeAt(0) === 58 /* : */) continue;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || skip.has(lower) || (extra !== undefined && extra.has(lower))) continue;
    out.push(name, raw[i + 1]!);
  }
  return out;
}
