import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../lib/log.js';
import { WeftError } from '../../lib/errors.js';
import type { ConfigStore } from '../../store/types.js';
import { adsServices } from '../../xds/protos.js';
import { WorkloadRegistry } from '../registry/workload-registry.js';
import { AdsServer } from './ads-server.js';
import { withWireRequests } from './discovery-request.js';
import { SdsServer, type TrustBundleSource } from './sds.js';
import { SnapshotCache } from './snapshot-cache.js';
import { isLoopback } from '../http/auth.js';
import type { ControlPlaneTls } from './xds-tls.js';
import { telemetryDefinitions } from '../../telemetry/telemetry-proto.js';
import type { TelemetryHub } from '../telemetry/hub.js';

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
  /**
   * A second, mTLS listener (`host:port`, port 0 picks one) with these
   * certificates: clients must present a certificate of the mesh CA.
   */
  tls?: { addr: string; certificates: ControlPlaneTls };
  /** Serve plaintext streams from non-loopback peers (`--xds-insecure-public`); default: refused. */
  insecurePublic?: boolean;
  /** Proxies' telemetry streams (weft.telemetry.v1.Telemetry), served beside ADS with the same credentials. */
  telemetry?: Pick<TelemetryHub, 'handlers'>;
}

export interface XdsServerHandle {
  /** `host:port` actually bound. */
  address: string;
  /** `host:port` of the mTLS listener, when `tls` was given. */
  tlsAddress?: string;
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
  const cache = await SnapshotCache.create({ store: opts.store, registry, ...(opts.sds ? { bundle: opts.sds } : {}), ...(opts.log ? { log: opts.log } : {}), ...(opts.debounceMs !== undefined ? { debounceMs: opts.debounceMs } : {}) });
  const ads = new AdsServer({ snapshots: cache, registry, ...(opts.log ? { log: opts.log } : {}) });
  const server = new grpc.Server({ 'grpc.max_send_message_length': 64 * 1024 * 1024, 'grpc.max_receive_message_length': 16 * 1024 * 1024 });
  const { ads: adsService, sds: sdsService } = adsServices();
  const guard = plaintextGuard(opts.insecurePublic === true, opts.log);
  // SotW requests through the wire decoder: ACKs repeating their resource names skip decoding them.
  server.addService(withWireRequests(adsService), guardAll({
    StreamAggregatedResources: ads.handler,
    DeltaAggregatedResources: ads.deltaHandler,
  }, guard));
  const sds = opts.sds ? new SdsServer({ bundle: opts.sds, ...(opts.log ? { log: opts.log } : {}) }) : undefined;
  if (sds) server.addService(sdsService, guardAll(sds.handlers, guard));
  // Same rules as ADS: what a telemetry stream reads (taps) is as sensitive as config.
  if (opts.telemetry) server.addService(telemetryDefinitions().service, guardAll(opts.telemetry.handlers as grpc.UntypedServiceImplementation, guard));
  const bind = (addr: string, creds: grpc.ServerCredentials): Promise<string> =>
    new Promise<number>((resolve, reject) => {
      server.bindAsync(addr, creds, (err, p) => (err ? reject(err) : resolve(p)));
    }).then(
      (port) => `${addr.slice(0, addr.lastIndexOf(':'))}:${port}`,
      (err: unknown) => {
        throw new WeftError('WEFT_ERR_UNAVAILABLE', `xds: cannot listen on ${addr}: ${(err as Error).message}`, { cause: err });
      },
    );
  let address: string;
  let tlsAddress: string | undefined;
  try {
    address = await bind(opts.addr, grpc.ServerCredentials.createInsecure());
    if (opts.tls) tlsAddress = await bind(opts.tls.addr, opts.tls.certificates.serverCredentials());
  } catch (err) {
    server.forceShutdown();
    cache.close();
    registry.close();
    sds?.close();
    throw err;
  }
  opts.log?.info({ address, tlsAddress }, tlsAddress !== undefined ? 'xds: serving ADS (plaintext and mTLS)' : 'xds: serving ADS (plaintext)');
  let closed: Promise<void> | undefined;
  return {
    address,
    ...(tlsAddress !== undefined ? { tlsAddress } : {}),
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

/**
 * Whether a call may be served: over TLS (the listener verified a client
 * certificate of the mesh CA), or plaintext from a loopback peer, or
 * plaintext from anywhere with `insecurePublic`. Plaintext xDS is for this
 * machine only (DESIGN.md "Ports"): what a stream reads is the whole mesh's
 * configuration, and what it registers receives traffic.
 */
type SurfaceCall = grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>;
type Guard = (call: SurfaceCall) => string | undefined;

function plaintextGuard(insecurePublic: boolean, log: Logger | undefined): Guard {
  return (call) => {
    if (call.getAuthContext().transportSecurityType === 'ssl') return undefined;
    if (insecurePublic) return undefined;
    const peer = call.getPeer();
    const host = peer.startsWith('[') ? peer.slice(1, peer.indexOf(']')) : peer.slice(0, peer.lastIndexOf(':'));
    if (isLoopback(host)) return undefined;
    log?.warn({ peer }, 'xds: plaintext stream from a non-loopback peer refused');
    return `plaintext xDS is served to loopback peers only; ${peer} must use the mTLS xDS listener with a mesh certificate`;
  };
}

function guardAll(handlers: grpc.UntypedServiceImplementation, guard: Guard): grpc.UntypedServiceImplementation {
  const out: grpc.UntypedServiceImplementation = {};
  for (const [name, h] of Object.entries(handlers)) {
    out[name] = ((call: SurfaceCall, cb?: grpc.sendUnaryData<unknown>) => {
      const refused = guard(call);
      if (refused === undefined) return (h as (c: unknown, cb?: unknown) => void)(call, cb);
      const status = { code: grpc.status.PERMISSION_DENIED, details: refused };
      if (typeof cb === 'function') cb(status);
      else call.emit('error', status);
    }) as grpc.UntypedHandleCall;
  }
  return out;
}
