/**
 * Just enough protobuf wire format to read a DiscoveryResponse without decoding
 * its resources: a thousand simulated proxies decoding every Cluster and
 * ClusterLoadAssignment in full would measure the benchmark, not the control
 * plane. Field numbers from envoy/service/discovery/v3/discovery.proto and
 * google/protobuf/any.proto; every resource Weft serves has its name in field 1.
 */
import { performance } from 'node:perf_hooks';

/** Wall clock with sub-millisecond resolution, comparable across processes. */
export const now = (): number => performance.timeOrigin + performance.now();

export interface LightResponse {
  versionInfo: string;
  typeUrl: string;
  nonce: string;
  /** Each resource's Any.value (the serialized resource), as views into `raw`. */
  resources: Buffer[];
  raw: Buffer;
}

function varint(buf: Buffer, pos: number): [number, number] {
  let result = 0;
  let shift = 0;
  for (let i = 0; i < 10; i++) {
    const b = buf[pos++];
    if (b === undefined) throw new Error('truncated varint');
    result += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return [result, pos];
    shift += 7;
  }
  throw new Error('varint too long');
}

/** Calls `cb(field, wireType, start, end)` for each field; for length-delimited ones start/end bound the payload. */
function fields(buf: Buffer, cb: (field: number, start: number, end: number) => void): void {
  let pos = 0;
  while (pos < buf.length) {
    const [key, p1] = varint(buf, pos);
    const field = Math.floor(key / 8);
    const wt = key & 7;
    pos = p1;
    switch (wt) {
      case 0:
        pos = varint(buf, pos)[1];
        break;
      case 1:
        pos += 8;
        break;
      case 5:
        pos += 4;
        break;
      case 2: {
        const [len, p2] = varint(buf, pos);
        cb(field, p2, p2 + len);
        pos = p2 + len;
        break;
      }
      default:
        throw new Error(`unsupported wire type ${wt}`);
    }
  }
}

export function parseResponse(raw: Buffer): LightResponse {
  const out: LightResponse = { versionInfo: '', typeUrl: '', nonce: '', resources: [], raw };
  fields(raw, (f, s, e) => {
    if (f === 1) out.versionInfo = raw.toString('utf8', s, e);
    else if (f === 4) out.typeUrl = raw.toString('utf8', s, e);
    else if (f === 5) out.nonce = raw.toString('utf8', s, e);
    else if (f === 2) {
      const any = raw.subarray(s, e);
      fields(any, (af, as, ae) => {
        if (af === 2) out.resources.push(any.subarray(as, ae));
      });
    }
  });
  return out;
}

/** Field 1 (name / cluster_name) of a serialized resource. */
export function resourceName(res: Buffer): string {
  // protobufjs writes fields in number order: field 1, when present, comes first.
  if (res.length > 0) {
    const [key, p1] = varint(res, 0);
    if (key === 0x0a) {
      const [len, p2] = varint(res, p1);
      return res.toString('utf8', p2, p2 + len);
    }
  }
  let name = '';
  fields(res, (f, s, e) => {
    if (f === 1 && name === '') name = res.toString('utf8', s, e);
  });
  return name;
}

/** The bytes protobuf writes for a string in field 2 (SocketAddress.address): tag, length, UTF-8. */
export function addressPattern(address: string): Buffer {
  const b = Buffer.from(address, 'utf8');
  if (b.length > 127) throw new Error('address too long');
  return Buffer.concat([Buffer.from([0x12, b.length]), b]);
}

/**
 * A DeltaDiscoveryResponse read the same way: `versionInfo` is
 * system_version_info, `resources` each Resource's Any.value, and `removed`
 * the removed_resources.
 */
export function parseDeltaResponse(raw: Buffer): LightResponse & { removed: string[] } {
  const out: LightResponse & { removed: string[] } = { versionInfo: '', typeUrl: '', nonce: '', resources: [], raw, removed: [] };
  fields(raw, (f, s, e) => {
    if (f === 1) out.versionInfo = raw.toString('utf8', s, e);
    else if (f === 4) out.typeUrl = raw.toString('utf8', s, e);
    else if (f === 5) out.nonce = raw.toString('utf8', s, e);
    else if (f === 6) out.removed.push(raw.toString('utf8', s, e));
    else if (f === 2) {
      const res = raw.subarray(s, e);
      fields(res, (rf, rs, re) => {
        if (rf !== 2) return;
        const any = res.subarray(rs, re);
        fields(any, (af, as, ae) => {
          if (af === 2) out.resources.push(any.subarray(as, ae));
        });
      });
    }
  });
  return out;
}
