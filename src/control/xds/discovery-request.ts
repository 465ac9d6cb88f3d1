import type * as grpc from '@grpc/grpc-js';

/**
 * A cheaper decoder for state-of-the-world DiscoveryRequests (the ACK path).
 *
 * Most requests on a busy SotW stream are ACKs that repeat the subscription:
 * an EDS ACK of a proxy that talks to 500 Services carries the same 500
 * resource names every time. protobufjs decodes each of them into a fresh
 * string (about 15 % of the control plane's CPU in bench:xds churn, plus the
 * garbage), only for the ADS server to find the subscription unchanged.
 *
 * This decoder reads the wire format itself for requests made only of
 * version_info (1), resource_names (3), type_url (4) and response_nonce (5),
 * and keeps resource_names as the bytes they came in: `namesBytes` (the
 * field-3 records, tags included) equal to the previous request's means the
 * same names in the same order, and the names are decoded only if someone
 * reads `resource_names`. Anything else (node, error_detail, other fields,
 * field 3 records not adjacent, malformed input) goes to the full protobufjs
 * decoder, so those requests read exactly as before.
 */

export interface WireDiscoveryRequest {
  version_info?: string;
  type_url?: string;
  response_nonce?: string;
  readonly resource_names: string[];
  /** The resource_names records as received (a view of the message: copy it to keep it). */
  readonly namesBytes: Buffer;
}

const VERSION_INFO = 1;
const RESOURCE_NAMES = 3;
const TYPE_URL = 4;
const RESPONSE_NONCE = 5;
const LENGTH_DELIMITED = 2;

class LazyRequest implements WireDiscoveryRequest {
  version_info?: string;
  type_url?: string;
  response_nonce?: string;
  private names?: string[];

  constructor(
    private readonly buf: Buffer,
    private readonly namesStart: number,
    private readonly namesEnd: number,
  ) {}

  get namesBytes(): Buffer {
    return this.buf.subarray(this.namesStart, this.namesEnd);
  }

  get resource_names(): string[] {
    if (this.names !== undefined) return this.names;
    const out: string[] = [];
    let pos = this.namesStart;
    while (pos < this.namesEnd) {
      const len = readVarint(this.buf, pos + 1); // after the one-byte tag (0x1a): only field-3 records are in the range
      out.push(this.buf.toString('utf8', varintEnd, varintEnd + len));
      pos = varintEnd + len;
    }
    this.names = out;
    return out;
  }
}

/**
 * Where the last readVarint stopped (a module variable rather than a returned
 * pair: this runs 500 times per ACK, and a pair per call is garbage).
 */
let varintEnd = 0;

/** A varint at `pos` (lengths and tags here fit in 32 bits: messages are ≤ 16 MiB); -1 if malformed. */
function readVarint(buf: Buffer, pos: number): number {
  const first = buf[pos];
  if (first !== undefined && first < 0x80) {
    varintEnd = pos + 1;
    return first;
  }
  let value = 0;
  let shift = 0;
  for (;;) {
    const b = buf[pos++];
    if (b === undefined || shift > 28) return -1;
    value += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) {
      varintEnd = pos;
      return value;
    }
    shift += 7;
  }
}

/** The fast decode, or undefined when the request needs the full decoder. */
export function decodeWireRequest(buf: Buffer): WireDiscoveryRequest | undefined {
  let namesStart = -1;
  let namesEnd = -1;
  let version: string | undefined;
  let typeUrl: string | undefined;
  let nonce: string | undefined;
  let pos = 0;
  const n = buf.length;
  while (pos < n) {
    const tag = buf[pos]!;
    // Fields 1–15 have one-byte tags; anything else is for the full decoder.
    if ((tag & 7) !== LENGTH_DELIMITED || tag >= 0x80) return undefined;
    const field = tag >>> 3;
    if (field === RESOURCE_NAMES) {
      if (namesStart >= 0) return undefined; // a second run of names, not adjacent to the first: let protobufjs merge them
      namesStart = pos;
      // The whole run of names records at once.
      while (pos < n && buf[pos] === tag) {
        const len = readVarint(buf, pos + 1);
        if (len < 0 || varintEnd + len > n) return undefined;
        pos = varintEnd + len;
      }
      namesEnd = pos;
      continue;
    }
    const len = readVarint(buf, pos + 1);
    if (len < 0 || varintEnd + len > n) return undefined;
    const at = varintEnd;
    const end = at + len;
    switch (field) {
      case VERSION_INFO:
        version = buf.toString('utf8', at, end);
        break;
      case TYPE_URL:
        typeUrl = buf.toString('utf8', at, end);
        break;
      case RESPONSE_NONCE:
        nonce = buf.toString('utf8', at, end);
        break;
      default:
        return undefined; // node, error_detail, locators, dynamic parameters: the full decoder
    }
    pos = end;
  }
  if (namesStart < 0) namesStart = namesEnd = 0;
  const req = new LazyRequest(buf, namesStart, namesEnd);
  // As protobufjs with `defaults: false` would: absent (and empty, proto3's default) strings are left out.
  if (version) req.version_info = version;
  if (typeUrl) req.type_url = typeUrl;
  if (nonce) req.response_nonce = nonce;
  return req;
}

/**
 * The ADS service definition with this decoder on StreamAggregatedResources'
 * requests (falling back to the original deserializer); other methods as given.
 */
export function withWireRequests(service: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const method = service.StreamAggregatedResources;
  if (method === undefined) return service;
  const full = method.requestDeserialize;
  return {
    ...service,
    StreamAggregatedResources: { ...method, requestDeserialize: (buf: Buffer) => decodeWireRequest(buf) ?? full(buf) },
  };
}
