/**
 * What one xDS client's stream is, whichever protocol it speaks (ads-server.ts: state of
 * the world, delta-server.ts: incremental): its node, view and workload registration,
 * the snapshot it follows, its per-type state for `weft proxy-status`, and what happens
 * when it binds and closes. The subclasses decide what to send.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../lib/log.js';
import { SHORT_NAMES, type XdsTypeUrl } from '../../xds/type-urls.js';
import type { RegistrationHandle, XdsNode } from '../registry/workload-registry.js';
// A cycle (ads-server.ts imports the subclasses), harmless: used only inside functions.
import { Convergence, type AdsServer, type ClientStatus, type TypeShortName, type TypeStatus } from './ads-server.js';
import type { ProxyView } from './model.js';
import { withPeerIdentity } from './peer-identity.js';
import type { Snapshot, XdsResource } from './snapshot.js';
import { viewOfNode } from './view-of-node.js';

/** The per-type fields proxy-status reads. */
export interface StreamTypeStatus {
  wildcard: boolean;
  names: Set<string>;
  sentVersion?: string;
  ackedVersion?: string;
  lastNack?: { message: string; at: string; version?: string };
}

export abstract class XdsStreamBase<TS extends StreamTypeStatus> {
  readonly id: string;
  readonly connectedAt = new Date();
  node?: XdsNode;
  view?: ProxyView;
  registration?: RegistrationHandle;
  lastPushAt?: Date;
  readonly types = new Map<XdsTypeUrl, TS>();
  protected snapshot?: Snapshot;
  protected nonceSeq = 0;
  protected closed = false;
  protected readonly convergence: Convergence;
  private unsubscribe?: () => void;

  constructor(
    id: number,
    protected readonly call: grpc.ServerDuplexStream<unknown, unknown>,
    protected readonly server: AdsServer,
    /** Extra fields of the connect log line and the status (`{ delta: true }`). */
    private readonly flavour: { delta?: true } = {},
  ) {
    this.id = String(id);
    this.convergence = new Convergence(server.counters);
  }

  get log(): Logger | undefined {
    return this.server.log;
  }

  /** The first request's node: the view it sees (peer certificate first), its registration, its snapshot. */
  protected bind(node: XdsNode): void {
    node = withPeerIdentity(node, this.call);
    this.node = node;
    this.view = viewOfNode(node);
    this.registration = this.server.registry?.connect(node);
    this.server.counters.connected[this.view.client ?? 'proxy']++;
    this.snapshot = this.server.snapshots.snapshot(this.view);
    this.unsubscribe = this.server.snapshots.subscribe(this.view, (s) => this.onSnapshot(s));
    this.log?.info({ stream: this.id, node: node.id, workload: this.workloadName(), ...this.flavour }, 'xds: proxy connected');
  }

  protected abstract onSnapshot(s: Snapshot): void;

  workloadName(): string | undefined {
    return this.registration ? `${this.registration.namespace}/${this.registration.name}` : undefined;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe?.();
    if (this.view !== undefined) this.server.counters.connected[this.view.client ?? 'proxy']--;
    if (this.registration) this.server.registry?.release(this.registration);
    this.log?.info({ stream: this.id, node: this.node?.id }, 'xds: proxy disconnected');
  }

  status(): ClientStatus {
    const types: ClientStatus['types'] = {};
    for (const [t, st] of this.types) {
      const s: TypeStatus = { subscribed: st.wildcard ? ['*', ...st.names] : [...st.names] };
      if (st.ackedVersion !== undefined) s.ackedVersion = st.ackedVersion;
      if (st.sentVersion !== undefined) s.sentVersion = st.sentVersion;
      if (st.lastNack !== undefined) s.lastNack = { ...st.lastNack };
      types[SHORT_NAMES[t] as TypeShortName] = s;
    }
    const out: ClientStatus = {
      id: this.id,
      nodeId: this.node?.id ?? '',
      namespace: this.view?.namespace ?? 'default',
      connectedAt: this.connectedAt.toISOString(),
      types,
      ...this.flavour,
    };
    const w = this.workloadName();
    if (w !== undefined) out.workload = w;
    if (this.lastPushAt) out.lastPushAt = this.lastPushAt.toISOString();
    return out;
  }

  /** What was last sent of each type (`weft proxy-config`). */
  abstract configDump(): Partial<Record<TypeShortName, XdsResource[]>>;
}
