/**
 * Shared by the xds-*.test.ts integration tests: a store in a temp dir, resource
 * builders, a raw ADS client, and polling with a deadline.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Resource } from '../../src/api/types.js';
import { createLogger } from '../../src/lib/log.js';
import { openFileStore } from '../../src/store/file/file-store.js';
import type { ConfigStore } from '../../src/store/types.js';
import { adsServices } from '../../src/xds/protos.js';
import { jsonToStruct } from '../../src/control/registry/node-metadata.js';

export const silent = createLogger('test', process.env.WEFT_TEST_LOG ?? 'silent');

export async function tempStore(): Promise<{ store: ConfigStore; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'weft-xds-'));
  const store = await openFileStore(join(dir, 'store'), { logger: silent });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function service(name: string, ports: { port: number; protocol?: string; targetPort?: number; name?: string }[], selector?: Record<string, string>, namespace = 'default'): Resource {
  return {
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'Service',
    metadata: { name, namespace },
    spec: { ...(selector ? { selector } : {}), ports: ports.map((p, i) => ({ name: p.name ?? `p${i}`, protocol: p.protocol ?? 'grpc', targetPort: p.targetPort ?? p.port, port: p.port })) },
  };
}

export function workload(name: string, address: string, labels: Record<string, string>, ports: number[] = [], namespace = 'default'): Resource {
  return {
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'Workload',
    metadata: { name, namespace },
    spec: { labels, address, ports: ports.map((port) => ({ port })), serviceAccount: 'default', health: 'HEALTHY' },
  };
}

export function httpRoute(name: string, spec: Record<string, unknown>, namespace = 'default'): Resource {
  return { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name, namespace }, spec };
}

/** Polls `cond` until it returns a truthy value or the deadline passes. */
export async function eventually<T>(cond: () => T | Promise<T>, what: string, timeoutMs = 5000, everyMs = 20): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface DiscoveryResponse {
  version_info: string;
  resources: Record<string, unknown>[];
  type_url: string;
  nonce: string;
}

export interface RawRequest {
  type_url: string;
  resource_names?: string[];
  version_info?: string;
  response_nonce?: string;
  error_detail?: { code: number; message: string };
}

/** An ADS client speaking the protocol by hand, to test what real clients rarely do. */
export class RawAdsClient {
  private readonly client: grpc.Client & { StreamAggregatedResources(): grpc.ClientDuplexStream<unknown, DiscoveryResponse> };
  private call: grpc.ClientDuplexStream<unknown, DiscoveryResponse>;
  private readonly queue: DiscoveryResponse[] = [];
  private waiters: (() => void)[] = [];
  private first = true;
  ended = false;

  constructor(
    address: string,
    private readonly nodeId: string,
    private readonly metadata: Record<string, unknown> = {},
  ) {
    const { AdsClient } = adsServices();
    this.client = new AdsClient(address, grpc.credentials.createInsecure()) as unknown as RawAdsClient['client'];
    this.call = this.open();
  }

  private open(): grpc.ClientDuplexStream<unknown, DiscoveryResponse> {
    const call = this.client.StreamAggregatedResources();
    this.first = true;
    this.ended = false;
    call.on('data', (r: DiscoveryResponse) => {
      this.queue.push(r);
      for (const w of this.waiters.splice(0)) w();
    });
    call.on('error', () => {
      this.ended = true;
    });
    call.on('end', () => {
      this.ended = true;
    });
    return call;
  }

  send(req: RawRequest): void {
    const msg: Record<string, unknown> = { ...req };
    if (this.first) {
      msg.node = { id: this.nodeId, locality: {}, metadata: jsonToStruct(this.metadata) };
      this.first = false;
    }
    this.call.write(msg);
  }

  /** ACK `r` (echo its version and nonce) keeping `names` subscribed. */
  ack(r: DiscoveryResponse, names: string[] = []): void {
    this.send({ type_url: r.type_url, resource_names: names, version_info: r.version_info, response_nonce: r.nonce });
  }

  /** Next response (optionally of a type), waiting up to timeoutMs. */
  async next(typeUrl?: string, timeoutMs = 5000): Promise<DiscoveryResponse> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.queue.findIndex((r) => typeUrl === undefined || r.type_url === typeUrl);
      if (i >= 0) return this.queue.splice(i, 1)[0] as DiscoveryResponse;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${typeUrl ?? 'response'} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  pending(): DiscoveryResponse[] {
    return [...this.queue];
  }

  /** Ends the stream and opens a new one on the same channel (a reconnect). */
  reconnect(): void {
    this.call.cancel();
    this.queue.length = 0;
    this.call = this.open();
  }

  disconnect(): void {
    this.call.cancel();
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}
