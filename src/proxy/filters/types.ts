/**
 * The HTTP filter contract (Envoy's decoder filters, request side only). A filter is
 * built once from its typed config (`create`); per request `decodeHeaders` returns
 * undefined to continue, a LocalReplySpec to answer locally, or a promise of either
 * (a fault delay) — the chain waits for it without blocking anything else.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { ProtoJson } from '../config/types.js';
import type { ResponseFlag } from '../local-reply.js';

/** What the proxy knows about the downstream connection a request arrived on. */
export interface DownstreamConnection {
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** The local (listener) address and port the connection was accepted on. */
  readonly localAddress: string;
  readonly localPort: number;
  /** True when the connection is TLS (terminated by this proxy). */
  readonly tls: boolean;
  /** The peer's SPIFFE ID (URI SAN of its verified client certificate), when mTLS; else undefined. */
  readonly peerPrincipal: string | undefined;
  /** TLS SNI the peer sent, if any. */
  readonly serverName: string | undefined;
}

export interface FilterRequest {
  readonly method: string;
  /** The request path with its query, as received (`/items?x=1`). */
  readonly path: string;
  /** The request's authority (`:authority` or Host), port included when given. */
  readonly authority: string;
  readonly connection: DownstreamConnection;
  /**
   * Envoy's dynamic metadata, by filter namespace: a filter earlier in the chain
   * (jwt_authn: the verified payload) leaves data for a later one (rbac: claim
   * conditions, via metadata matchers).
   */
  readonly metadata: Map<string, Record<string, unknown>>;
  /** Sets (replaces) a header on the upstream request only (e.g. jwt_authn claim_to_headers). */
  setRequestHeader(name: string, value: string): void;
  /** Removes a header from the upstream request only (e.g. jwt_authn forward: false). */
  removeRequestHeader(name: string): void;
  /** node:http's lower-cased header object (`:method` etc. present for HTTP/2). */
  readonly headers: IncomingHttpHeaders;
  /** The route's cluster (undefined for weighted clusters, redirects, direct responses). */
  readonly cluster: string | undefined;
  readonly grpc: boolean;
}

export interface LocalReplySpec {
  readonly flag: ResponseFlag;
  readonly status?: number | undefined;
  /** gRPC status for a gRPC request (else derived from the flag and status). */
  readonly grpcStatus?: number | undefined;
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

export type FilterVerdict = LocalReplySpec | undefined;

export interface HttpFilter {
  /** `perRoute`: this filter's compiled typed_per_filter_config on the matched route, if any. */
  decodeHeaders(r: FilterRequest, perRoute: unknown): FilterVerdict | Promise<FilterVerdict>;
}

/** Injected time and randomness (tests pass fakes). */
export interface FilterDeps {
  readonly now: () => number;
  readonly random: () => number;
}

export interface FilterFactory {
  /** Envoy's filter name, e.g. envoy.filters.http.fault. */
  readonly name: string;
  /** The typed_config message, e.g. envoy.extensions.filters.http.fault.v3.HTTPFault. */
  readonly typeName: string;
  /** Listener-level config → filter (throws ConfigError on what it cannot honour). */
  create(fields: ProtoJson, path: string, deps: FilterDeps): HttpFilter;
  /** typed_per_filter_config → compiled per-route config handed to decodeHeaders. */
  compilePerRoute(fields: ProtoJson, path: string, deps: FilterDeps): unknown;
}

/** One filter of an HCM chain, in order. */
export interface ChainEntry {
  /** The name the HCM gives it (typed_per_filter_config keys refer to it). */
  readonly name: string;
  readonly filter: HttpFilter;
}
