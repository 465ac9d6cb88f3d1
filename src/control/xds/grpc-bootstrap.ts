import { META } from '../registry/node-metadata.js';
import { SERVER_LISTENER_TEMPLATE } from './names.js';
import { GRPC_CERT_PROVIDER } from './security/mesh-tls.js';

/** File names in `--cert-dir` (what the agent writes and the bootstrap's file_watcher reads). */
export const GRPC_CERT_FILES = { certificate: 'cert.pem', privateKey: 'key.pem', ca: 'ca.pem' } as const;

export interface GrpcBootstrapOptions {
  /** The Service this application is (its identity and namespace; clients too). */
  service: string;
  namespace: string;
  /** True for an application that serves through XdsServer (adds the server listener template). */
  server?: boolean;
  /** `host:port` of the control plane's plaintext xDS listener. */
  xdsAddress: string;
  /** Default `<service>.<namespace>~<pid-ish random>`; must be unique per process. */
  nodeId?: string;
  /** When the app should register as a Workload: the address (and ports) it serves on. */
  workloadAddress?: string;
  workloadPorts?: number[];
  /** Its service account (WEFT_SERVICE_ACCOUNT): peers check its certificate's SPIFFE ID against it. */
  serviceAccount?: string;
  locality?: { region?: string; zone?: string; sub_zone?: string };
  /**
   * mTLS: the directory of the workload's certificate, key and trust bundle
   * (GRPC_CERT_FILES, kept fresh by `weft bootstrap grpc --watch`). Adds the
   * `file_watcher` certificate provider `weft` and node metadata
   * WEFT_GRPC_MTLS, so the control plane sends TLS settings naming it.
   */
  certDir?: string;
  /** How often gRPC re-reads the files (default 10 s). */
  refreshIntervalSeconds?: number;
}

/**
 * The bootstrap JSON for @grpc/grpc-js-xds (`GRPC_XDS_BOOTSTRAP` file or
 * `GRPC_XDS_BOOTSTRAP_CONFIG`). What gRPC needs and XDS-NOTES.md checked:
 * insecure channel creds (the only kind it has besides google_default), a
 * node with a `locality` (calls fail with a misleading error without one), and
 * for servers the `server_listener_resource_name_template`.
 */
export function grpcBootstrap(opts: GrpcBootstrapOptions): Record<string, unknown> {
  const metadata: Record<string, string> = { [META.namespace]: opts.namespace, [META.service]: opts.service };
  if (opts.workloadAddress !== undefined) metadata[META.address] = opts.workloadAddress;
  if (opts.workloadPorts !== undefined) metadata[META.ports] = opts.workloadPorts.join(',');
  if (opts.serviceAccount !== undefined) metadata[META.serviceAccount] = opts.serviceAccount;
  const bootstrap: Record<string, unknown> = {
    xds_servers: [{ server_uri: opts.xdsAddress, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: {
      id: opts.nodeId ?? `${opts.service}.${opts.namespace}~${Math.random().toString(36).slice(2, 10)}`,
      cluster: opts.service,
      locality: opts.locality ?? {},
      metadata,
    },
  };
  if (opts.server) bootstrap.server_listener_resource_name_template = SERVER_LISTENER_TEMPLATE;
  if (opts.certDir !== undefined) {
    metadata[META.grpcMtls] = 'true';
    const dir = opts.certDir.replace(/\/+$/, '');
    bootstrap.certificate_providers = {
      [GRPC_CERT_PROVIDER]: {
        plugin_name: 'file_watcher',
        config: {
          certificate_file: `${dir}/${GRPC_CERT_FILES.certificate}`,
          private_key_file: `${dir}/${GRPC_CERT_FILES.privateKey}`,
          ca_certificate_file: `${dir}/${GRPC_CERT_FILES.ca}`,
          refresh_interval: `${opts.refreshIntervalSeconds ?? 10}s`,
        },
      },
    };
  }
  return bootstrap;
}
