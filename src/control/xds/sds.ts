import { createHash } from 'node:crypto';
import { serveBidiStream } from './bidi-stream.js';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../lib/log.js';
import { SECRET } from '../../xds/type-urls.js';
import { encodeResource, type EncodedAny } from './encode-cache.js';
import type { XdsResource } from './snapshot.js';

/**
 * Secret Discovery Service: the trust bundle, and only the trust bundle.
 *
 * The one secret served is `ROOTCA` (Istio's name for it), a `Secret` whose
 * `validation_context.trusted_ca` holds the PEM of every trusted root, inline.
 * Any client may subscribe: the bundle is public. A root rotation changes the
 * bundle, and every subscriber gets the new one at once.
 *
 * Workload certificates and keys are never served here: a workload makes its
 * own key and gets its certificate from `POST /ca/certificates` (the key never
 * leaves it; docs/adr/0005-workload-keys-stay-local.md). A request for any
 * other name is answered with what exists of it (nothing), so SotW clients
 * that also ask for `default` get ROOTCA and wait for the rest.
 *
 * Served as its own gRPC service, `envoy.service.secret.v3.SecretDiscoveryService`
 * (StreamSecrets, state of the world, and FetchSecrets), on the xDS server.
 */
export const ROOTCA_SECRET = 'ROOTCA';

/** Where the bundle comes from (the CA service). */
export interface TrustBundleSource {
  bundlePem(): string;
  /** Called with the new bundle after each change; returns an unsubscribe function. */
  onBundleChange(cb: (bundlePem: string) => void): () => void;
}

/** The ROOTCA secret for a bundle. */
export function rootCaSecret(bundlePem: string): XdsResource {
  return {
    '@type': SECRET,
    name: ROOTCA_SECRET,
    validation_context: { trusted_ca: { inline_bytes: Buffer.from(bundlePem, 'utf8') } },
  };
}

interface DiscoveryRequest {
  version_info?: string;
  node?: { id?: string } | null;
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string } | null;
}

interface DiscoveryResponse {
  version_info: string;
  resources: (EncodedAny | XdsResource)[];
  type_url: string;
  nonce: string;
}

type SdsCall = grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;

/** One bundle, its secret and encoding: rebuilt only when the bundle changes. */
interface Current {
  bundle: string;
  version: string;
  resource: EncodedAny | XdsResource;
}

function currentOf(bundle: string): Current {
  return {
    bundle,
    version: createHash('sha256').update(bundle).digest('hex').slice(0, 16),
    resource: encodeResource(rootCaSecret(bundle), SECRET),
  };
}

class SdsStream {
  nodeId?: string;
  names = new Set<string>();
  wildcard = false;
  subscribed = false;
  nonce?: string;
  sentVersion?: string;
  ackedVersion?: string;
  nackedVersion?: string;
  private seq = 0;
  closed = false;

  constructor(
    readonly id: string,
    private readonly call: SdsCall,
    private readonly server: SdsServer,
  ) {}

  onRequest(req: DiscoveryRequest): void {
    if (this.closed) return;
    if (this.nodeId === undefined && req.node?.id) this.nodeId = req.node.id;
    if (req.type_url && req.type_url !== SECRET) {
      this.server.log?.debug({ stream: this.id, type: req.type_url }, 'sds: request for a type other than Secret; ignored');
      return;
    }
    const nonce = req.response_nonce ?? '';
    if (this.subscribed && nonce !== '' && nonce !== this.nonce) {
      this.server.log?.debug({ stream: this.id, nonce, latest: this.nonce }, 'sds: stale nonce; ignored');
      return;
    }
    if (req.error_detail) {
      this.nackedVersion = this.sentVersion;
      this.server.log?.warn({ stream: this.id, node: this.nodeId, version: this.sentVersion, message: req.error_detail.message }, 'sds: NACK');
    } else if (nonce !== '') {
      this.ackedVersion = req.version_info || this.sentVersion;
    }
    const names = req.resource_names ?? [];
    this.wildcard = names.length === 0 || names.includes('*');
    this.names = new Set(names.filter((n) => n !== '*'));
    this.subscribed = true;
    this.maybeSend();
  }

  wantsRootCa(): boolean {
    return this.wildcard || this.names.has(ROOTCA_SECRET);
  }

  maybeSend(): void {
    if (this.closed || !this.subscribed || !this.wantsRootCa()) return;
    const cur = this.server.current();
    if (cur.version === this.sentVersion || cur.version === this.nackedVersion) return;
    const nonce = `sds-${this.id}-${++this.seq}`;
    this.nonce = nonce;
    this.sentVersion = cur.version;
    this.server.pushes++;
    this.server.log?.debug({ stream: this.id, node: this.nodeId, version: cur.version }, 'sds: push ROOTCA');
    this.call.write({ version_info: cur.version, resources: [cur.resource], type_url: SECRET, nonce });
  }
}

export interface SdsServerOptions {
  bundle: TrustBundleSource;
  log?: Logger;
}

/** The SDS service's state and handlers; mount `handlers` for SecretDiscoveryService. */
export class SdsServer {
  readonly log?: Logger;
  /** Responses sent. */
  pushes = 0;
  private cur: Current;
  private readonly streams = new Map<string, SdsStream>();
  private seq = 0;
  private readonly unsubscribe: () => void;

  constructor(opts: SdsServerOptions) {
    if (opts.log) this.log = opts.log;
    this.cur = currentOf(opts.bundle.bundlePem());
    this.unsubscribe = opts.bundle.onBundleChange((bundle) => {
      if (bundle === this.cur.bundle) return;
      this.cur = currentOf(bundle);
      this.log?.info({ version: this.cur.version, streams: this.streams.size }, 'sds: trust bundle changed; pushing ROOTCA');
      for (const s of this.streams.values()) s.maybeSend();
    });
  }

  current(): Current {
    return this.cur;
  }

  /** Streams open now. */
  get streamCount(): number {
    return this.streams.size;
  }

  readonly handlers: grpc.UntypedServiceImplementation = {
    StreamSecrets: (call: SdsCall): void => {
      const s = new SdsStream(String(++this.seq), call, this);
      this.streams.set(s.id, s);
      serveBidiStream(call, {
        onRequest: (req) => s.onRequest(req),
        onEnd: () => {
          s.closed = true;
          this.streams.delete(s.id);
        },
      }, this.log, { stream: s.id, what: 'sds' });
    },
    FetchSecrets: (call: grpc.ServerUnaryCall<DiscoveryRequest, DiscoveryResponse>, cb: grpc.sendUnaryData<DiscoveryResponse>): void => {
      const names = call.request.resource_names ?? [];
      const cur = this.cur;
      const want = names.length === 0 || names.includes('*') || names.includes(ROOTCA_SECRET);
      cb(null, { version_info: cur.version, resources: want ? [cur.resource] : [], type_url: SECRET, nonce: '' });
    },
    DeltaSecrets: (call: grpc.ServerDuplexStream<unknown, unknown>): void => {
      call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'delta SDS is not served; use StreamSecrets (state of the world)' });
    },
  };

  /** Ends every stream and stops following the bundle. */
  close(): void {
    this.unsubscribe();
    for (const s of this.streams.values()) s.closed = true;
    this.streams.clear();
  }
}
