/**
 * The original destination of a connection that an iptables REDIRECT sent to the
 * proxy: `getsockopt(fd, SOL_IP, SO_ORIGINAL_DST)` on the accepted socket, which
 * returns the `sockaddr_in` the application dialled before NAT rewrote it. Node has
 * no API for it, so libc's getsockopt is called through koffi (an FFI library that
 * ships prebuilt binaries: nothing is compiled at install). koffi is loaded lazily,
 * only by a proxy in transparent mode.
 */
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { WeftError } from '../../lib/errors.js';

const SOL_IP = 0;
const SO_ORIGINAL_DST = 80;
const AF_INET = 2;

export interface OriginalDst {
  readonly address: string;
  readonly port: number;
}

type GetSockOpt = (fd: number, level: number, name: number, out: Buffer, len: number[]) => number;
let getsockopt: GetSockOpt | undefined;

function load(): GetSockOpt {
  if (getsockopt !== undefined) return getsockopt;
  try {
    // koffi is CommonJS; createRequire keeps it out of the startup path of every other mode.
    const koffi = createRequire(import.meta.url)('koffi') as {
      load(path: string): { func(sig: string): GetSockOpt };
    };
    const libc = koffi.load('libc.so.6');
    getsockopt = libc.func('int getsockopt(int fd, int level, int name, _Out_ uint8_t *optval, _Inout_ uint32_t *optlen)');
    return getsockopt;
  } catch (e) {
    throw new WeftError('WEFT_ERR_CAPTURE', `transparent mode needs koffi and glibc to read SO_ORIGINAL_DST: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

/** Checks once, early, that the FFI call can be made (a clear error at start, not per connection). */
export function ensureOriginalDstSupport(): void {
  load();
}

/** The file descriptor under a net.Socket (`_handle.fd`, -1 when there is none, e.g. on Windows). */
export function socketFd(s: Socket): number {
  const h = (s as unknown as { _handle?: { fd?: number } })._handle;
  return typeof h?.fd === 'number' ? h.fd : -1;
}

/**
 * The pre-NAT destination of an accepted IPv4 socket; undefined when conntrack has no
 * entry for it or it is not IPv4. A connection that was not NATed but is tracked gets
 * its own local address back: callers compare with `localAddress` / `localPort`.
 */
export function originalDst(s: Socket): OriginalDst | undefined {
  const fd = socketFd(s);
  if (fd < 0) return undefined;
  const call = load();
  const buf = Buffer.alloc(16);
  const len = [16];
  // ENOENT: not NATed (dialled the listener directly); anything else: nothing to go by either.
  if (call(fd, SOL_IP, SO_ORIGINAL_DST, buf, len) !== 0) return undefined;
  if (buf.readUInt16LE(0) !== AF_INET) return undefined;
  return { address: `${buf[4]}.${buf[5]}.${buf[6]}.${buf[7]}`, port: buf.readUInt16BE(2) };
}
