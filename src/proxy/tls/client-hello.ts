/**
 * What tls_inspector learns from the first bytes of a connection: whether it is
 * TLS, and the SNI and ALPN of its ClientHello (RFC 8446 §4.1.2, RFC 6066 §3,
 * RFC 7301). Pure functions over a buffer so the listener can peek, decide and
 * put the bytes back.
 */

export interface ClientHelloInfo {
  /** Lower case; undefined when the client sent none. */
  readonly serverName: string | undefined;
  readonly alpn: readonly string[];
}

/** Bigger ClientHellos are not waited for (Envoy's tls_inspector caps at 64 KiB too). */
export const MAX_CLIENT_HELLO = 64 * 1024;

/** 0x16 = handshake record; a TLS 1.0–1.3 record header follows. */
export function looksLikeTls(buf: Buffer): boolean {
  return buf.length >= 1 && buf[0] === 0x16 && (buf.length < 2 || buf[1] === 0x03);
}

/**
 * `'incomplete'`: more bytes are needed; `undefined`: not a ClientHello we can
 * read (the connection is still TLS; it just has no SNI/ALPN to match on).
 */
export function parseClientHello(buf: Buffer): ClientHelloInfo | 'incomplete' | undefined {
  // Records may split a ClientHello; collect handshake bytes across records.
  const hs: Buffer[] = [];
  let have = 0;
  let off = 0;
  let need = -1;
  while (need < 0 || have < need) {
    if (buf.length < off + 5) return buf.length >= MAX_CLIENT_HELLO ? undefined : 'incomplete';
    if (buf[off] !== 0x16) return undefined;
    const len = buf.readUInt16BE(off + 3);
    if (buf.length < off + 5 + len) return buf.length >= MAX_CLIENT_HELLO ? undefined : 'incomplete';
    hs.push(buf.subarray(off + 5, off + 5 + len));
    have += len;
    off += 5 + len;
    if (need < 0) {
      const first = Buffer.concat(hs);
      if (first.length < 4) continue;
      if (first[0] !== 0x01) return undefined; // not a ClientHello
      need = 4 + first.readUIntBE(1, 3);
      if (need > MAX_CLIENT_HELLO) return undefined;
    }
  }
  return readHello(Buffer.concat(hs).subarray(4, need));
}

function readHello(b: Buffer): ClientHelloInfo | undefined {
  try {
    let p = 2 + 32; // version, random
    p += 1 + b[p]!; // session id
    p += 2 + b.readUInt16BE(p); // cipher suites
    p += 1 + b[p]!; // compression methods
    let serverName: string | undefined;
    const alpn: string[] = [];
    if (p + 2 > b.length) return { serverName, alpn };
    const end = p + 2 + b.readUInt16BE(p);
    p += 2;
    while (p + 4 <= end) {
      const type = b.readUInt16BE(p);
      const len = b.readUInt16BE(p + 2);
      const ext = b.subarray(p + 4, p + 4 + len);
      p += 4 + len;
      if (type === 0x0000 && ext.length >= 5) {
        // server_name_list: one host_name entry (type 0) is all clients send.
        let q = 2;
        while (q + 3 <= ext.length) {
          const nameType = ext[q]!;
          const nlen = ext.readUInt16BE(q + 1);
          if (nameType === 0) { serverName = ext.subarray(q + 3, q + 3 + nlen).toString('latin1').toLowerCase(); break; }
          q += 3 + nlen;
        }
      } else if (type === 0x0010 && ext.length >= 2) {
        let q = 2;
        while (q < ext.length) {
          const plen = ext[q]!;
          alpn.push(ext.subarray(q + 1, q + 1 + plen).toString('latin1'));
          q += 1 + plen;
        }
      }
    }
    return { serverName, alpn };
  } catch {
    return undefined;
  }
}

const H2C_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const HTTP1_METHOD = /^(GET|HEAD|POST|PUT|DELETE|CONNECT|OPTIONS|TRACE|PATCH|PROPFIND|PROPPATCH|MKCOL|COPY|MOVE|LOCK|UNLOCK|PURGE) /;

/**
 * http_inspector on plaintext: `'h2c'` for the HTTP/2 preface, `'http/1.1'` for an
 * HTTP/1.x request line start, undefined for anything else, `'incomplete'` while
 * the bytes so far could still be either.
 */
export function sniffHttp(buf: Buffer): 'h2c' | 'http/1.1' | undefined | 'incomplete' {
  const n = Math.min(buf.length, H2C_PREFACE.length);
  if (buf.subarray(0, n).equals(H2C_PREFACE.subarray(0, n))) return n === H2C_PREFACE.length ? 'h2c' : 'incomplete';
  const head = buf.subarray(0, 16).toString('latin1');
  if (HTTP1_METHOD.test(head)) return 'http/1.1';
  if (buf.length < 16 && /^[A-Z]*$/.test(head)) return 'incomplete';
  return undefined;
}
