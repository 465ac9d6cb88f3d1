/**
 * Readable names for the routes proxies report. A proxy reports the xDS route entry's
 * name, which the control plane made in src/control/xds/routes.ts (`entryName`):
 * `HTTPRoute/NS/NAME/ruleI/matchJ[.K]` — one entry per match, by index, since Envoy
 * route names need not be unique and rule names are optional. People think in rules,
 * so golden metrics count per rule and show the rule's `name` when it has one:
 * `HTTPRoute/catalog/items` (or `HTTPRoute/catalog/rule1`; the route's namespace is
 * shown only when it is not the destination Service's).
 *
 * Rule names come from the store (the routes as applied), kept current by a watch, so
 * a renamed rule shows its new name on the next read.
 */
import type { Resource } from '../../api/types.js';
import type { Logger } from '../../lib/log.js';
import type { ConfigStore, Watch } from '../../store/types.js';
import type { PeerRef } from './golden.js';

const ROUTE_KINDS: ReadonlySet<string> = new Set(['HTTPRoute', 'GRPCRoute']);
/** `Kind/ns/name/ruleI/matchJ[.K]` (routes.ts entryName). */
const ENTRY = /^(HTTPRoute|GRPCRoute)\/([^/]+)\/([^/]+)\/rule(\d+)\/match\d+(?:\.\d+)?$/;

/** Rule names of a route, by rule index (undefined where a rule has no name). */
export type RuleNames = (kind: string, namespace: string, name: string) => readonly (string | undefined)[] | undefined;

/**
 * The name a reported route is shown under. Entries of one rule (one per match) get the
 * same name, so they add up; a name that is not a route entry (`default`, a static
 * bootstrap's route) is shown as it is.
 */
export function routeLabel(entry: string, destination: PeerRef, rules?: RuleNames): string {
  const m = ENTRY.exec(entry);
  if (m === null) return entry;
  const [, kind, ns, name, index] = m as unknown as [string, string, string, string, string];
  const ruleName = rules?.(kind, ns, name)?.[Number(index)];
  const route = ns === destination.namespace ? name : `${ns}/${name}`;
  return `${kind}/${route}/${ruleName !== undefined && ruleName !== '' ? ruleName : `rule${index}`}`;
}

/** The rule names of every HTTPRoute and GRPCRoute in the store, followed by a watch. */
export class RouteRuleIndex {
  private readonly rules = new Map<string, readonly (string | undefined)[]>();
  private watch: Watch | undefined;
  private closed = false;

  constructor(private readonly store: ConfigStore, private readonly log?: Logger) {
    this.start().catch((err: unknown) => this.log?.warn({ err }, 'telemetry: route rule names unavailable; routes show as ruleN'));
  }

  readonly lookup: RuleNames = (kind, namespace, name) => this.rules.get(`${kind}/${namespace}/${name}`);

  private set(o: Resource, deleted: boolean): void {
    const key = `${o.kind}/${o.metadata.namespace ?? 'default'}/${o.metadata.name}`;
    if (deleted) {
      this.rules.delete(key);
      return;
    }
    const rules = (o.spec as { rules?: { name?: unknown }[] } | undefined)?.rules ?? [];
    this.rules.set(key, rules.map((r) => (typeof r.name === 'string' ? r.name : undefined)));
  }

  private async start(): Promise<void> {
    const lists = await Promise.all([...ROUTE_KINDS].map((kind) => this.store.list({ kind })));
    if (this.closed) return;
    for (const l of lists) for (const o of l.items) this.set(o, false);
    // From the older list's revision: a change seen twice is applied twice, harmlessly.
    const fromRevision = Math.min(...lists.map((l) => l.revision));
    this.watch = this.store.watch({ fromRevision }, (e) => {
      if (ROUTE_KINDS.has(e.object.kind)) this.set(e.object, e.type === 'DELETED');
    });
  }

  close(): void {
    this.closed = true;
    this.watch?.close();
  }
}
