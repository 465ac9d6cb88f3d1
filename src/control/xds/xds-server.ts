import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../lib/log.js';
import { WeftError } from '../../lib/errors.js';
import type { ConfigStore } from '../../store/types.js';
import { adsServices } from '../../xds/protos.js';
import { WorkloadRegistry } from '../registry/workload-registry.js';
import { AdsServer } from './ads-server.js';
import { SdsServer, type TrustBundleSource } from './sds.js';
import { SnapshotCache } from './snapshot-cache.js';

export interface XdsServerOptions {
  store: ConfigStore;
  /** `host:port`; port 0 picks a free one. */
  addr: string;
  log?: Logger;
  /** Debounce of store changes before translation (default 100 ms). */
  debounceMs?: number;
  /** Grace period of a registered workload after its stream ends (default 10 s). */
  workloadGraceMs?: number;
  /** The trust bundle: with it, SecretDiscoveryService serves it as the `ROOTCA` secret (sds.ts). */
  sds?: TrustBundleSource;
}

export interface XdsServerHandle {
  /** `host:port` actually bound. */
  address: string;
  ads: AdsServer;
  cache: SnapshotCache;
  registry: WorkloadRegistry;
  /** The SDS service, when `sds` was given. */
  sds?: SdsServer;
  close(): Promise<void>;
}

/**
 * The control plane's xDS endpoint: ADS (state of the world and delta) over plaintext
 * gRPC. Plaintext is what proxyless gRPC clients can use (they have no TLS
 * channel credentials); keep it on loopback. TLS comes with the CA.
 */
export async function startXdsServer(opts: XdsServerOptions): Promise<XdsServerHandle> {
  const registry = new WorkloadRegistry({
    ...(opts.workloadGraceMs !== undefined ? { graceMs: opts.workloadGraceMs } : {}),
    onError: (nodeId, err) => opts.log?.warn({ node: nodeId, err: err.message }, 'xds: node metadata does not describe a valid workload; not registered'),
  });
  const cache = await SnapshotCache.create({ store: opts.store, registry, ...(opts.log ? { log: opts.log } : {}), ...(opts.debounceMs !== undefined ? { debounceMs: opts.debounceMs } : {}) });
  const ads = new AdsServer({ snapshots: cache, registry, ...(opts.log ? { log: opts.log } : {}) });
  const server = new grpc.Server({ 'grpc.max_send_message_length': 64 * 1024 * 1024, 'grpc.max_receive_message_length': 16 * 1024 * 1024 });
  const { ads: adsService, sds: sdsService } = adsServices();
  server.addService(adsService, {
    StreamAggregatedResources: ads.handler,
    DeltaAggregatedResources: ads.deltaHandler,
  });
  const sds = opts.sds ? new SdsServer({ bundle: opts.sds, ...(opts.log ? { log: opts.log } : {}) }) : undefined;
  if (sds) server.addService(sdsService, sds.handlers);
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(opts.addr, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
    });
  } catch (err) {
    cache.close();
    registry.close();
    sds?.close();
    throw new WeftError('WEFT_ERR_UNAVAILABLE', `xds: cannot listen on ${opts.addr}: ${(err as Error).message}`, { cause: err });
  }
  const host = opts.addr.slice(0, opts.addr.lastIndexOf(':'));
  const address = `${host}:${port}`;
  opts.log?.info({ address }, 'xds: serving ADS (plaintext)');
  let closed: Promise<void> | undefined;
  return {
    address,
    ads,
    cache,
    registry,
    ...(sds ? { sds } : {}),
    close() {
      closed ??= (async () => {
        ads.closeAll();
        sds?.close();
        cache.close();
        registry.close();
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => {
            server.forceShutdown();
            resolve();
          }, 2000);
          server.tryShutdown(() => {
            clearTimeout(t);
            resolve();
          });
        });
        server.forceShutdown();
      })();
      return closed;
    },
  };
}
