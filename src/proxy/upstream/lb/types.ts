/** The load balancer contract every algorithm in this folder implements. */

/** Per-endpoint counters; one object per address:port lives across EDS updates. */
export interface HostStats {
  /** Requests in flight to this host (least request reads it). */
  active: number;
  total: number;
  connectFailures: number;
}

export interface Host {
  readonly address: string;
  readonly port: number;
  /** `address:port`, the identity of a host across updates. */
  readonly key: string;
  /** Effective weight ≥ 1. */
  readonly weight: number;
  readonly stats: HostStats;
  /** `region/zone/subzone` (what locality-weighted balancing groups by). */
  readonly locality?: string;
}

export interface LbContext {
  /** Hash of the request's hash-policy key (53-bit integer), if the route computed one. */
  readonly hash?: number | undefined;
}

export interface LoadBalancer {
  /** A host, or undefined when there is none to pick. */
  pick(ctx: LbContext): Host | undefined;
}

export interface LbOptions {
  readonly minRingSize: number;
  readonly maxRingSize: number;
  readonly maglevTableSize: number;
  readonly leastRequestChoices: number;
  /** Injected for deterministic tests. */
  readonly random?: () => number;
  /**
   * Locality (`region/zone/subzone`) → EDS locality weight, when the cluster has
   * `locality_weighted_lb_config`: a locality first, by weight, then a host in it.
   * Ignored by RING_HASH and MAGLEV (as Envoy). Host weights should then be the
   * endpoint weights alone, not multiplied by the locality weight.
   */
  readonly localityWeights?: ReadonlyMap<string, number>;
}
