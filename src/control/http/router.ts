import type { KindDescriptor } from '../../api/descriptor.js';
import type { KindRegistry } from '../../api/registry.js';
import { WeftError } from '../../lib/errors.js';
import { CA_OPS, type CaOp } from './ca.js';
import { resolveDashboardRoute, type DashboardRoute } from './dashboard.js';
import { telemetryOp, type TelemetryOp } from './telemetry.js';

/** What a request path names, after strict checks and kind lookup. */
export type Route =
  | { type: 'healthz' }
  | { type: 'version' }
  | { type: 'discovery' }
  | { type: 'apply' }
  | { type: 'metrics' }
  /** Connected xDS clients. */
  | { type: 'xds-clients' }
  /** What was last sent to one xDS client; `nodeId` is decoded and checked. */
  | { type: 'xds-client-config'; nodeId: string }
  /** The CA: `/ca/tokens`, `/ca/certificates`, `/ca/bundle`, `/ca/status`, `/ca/rotate` (ca.ts). */
  | { type: 'ca'; op: CaOp }
  /** Golden metrics and taps: `/apis/telemetry/v1/{stats,stats/stream,timeseries,tap,proxies}` (telemetry.ts). */
  | { type: 'telemetry'; op: TelemetryOp }
  /** A collection: every namespace when `namespace` is undefined (or the kind is cluster-scoped). */
  | { type: 'collection'; kind: KindDescriptor; namespace: string | undefined }
  /** One object. `namespace` is '' for cluster-scoped kinds, as in ResourceKey. */
  | { type: 'object'; kind: KindDescriptor; namespace: string; name: string }
  /** The web dashboard: `/`, `/ui`, `/ui/`, `/ui/{asset}`, `/ui/api/watch` (dashboard.ts). */
  | DashboardRoute;

const SEGMENT = /^[A-Za-z0-9._-]+$/;
/** RFC 3986 unreserved characters and percent-escapes: an encoded xDS node id. */
const ENCODED_SEGMENT = /^(?:[A-Za-z0-9._~-]|%[0-9A-Fa-f]{2})+$/;
const MAX_NODE_ID = 512;

/**
 * Splits the raw request target into path segments and query, refusing anything a
 * lenient decoder could turn into a different path: `..` and `.`, empty segments
 * (`//`, trailing `/`), percent-encoding (`%2F`) and characters outside
 * `[A-Za-z0-9._-]`. Done on the raw text, before any decoding, so what is checked
 * is what is routed.
 *
 * One exception: the node id in `/xds/clients/{nodeId}/...`. Node ids are chosen
 * by xDS clients (`sidecar~10.0.0.1~catalog-1.default~default.svc.cluster.local`,
 * `catalog.default~x1`, ids with `:`), so that one segment may also carry `~` and
 * percent-escapes. It is decoded here, once, and the decoded id is refused if it
 * is `.`/`..`, contains `/`, a backslash or control characters, or is not UTF-8: it can
 * name a node, never a different path.
 */
export function splitTarget(rawUrl: string): { segments: string[]; query: URLSearchParams } {
  const q = rawUrl.indexOf('?');
  const path = q === -1 ? rawUrl : rawUrl.slice(0, q);
  const query = new URLSearchParams(q === -1 ? '' : rawUrl.slice(q + 1));
  if (!path.startsWith('/')) throw bad('the request path must start with "/"');
  if (path === '/') return { segments: [], query };
  // The dashboard's page is a directory URL (its modules load relative to it): the one trailing slash allowed.
  if (path === '/ui/') return { segments: ['ui', ''], query };
  const segments = path.slice(1).split('/');
  for (const [i, s] of segments.entries()) {
    if (s === '') throw bad('the request path has an empty segment');
    if (s === '.' || s === '..') throw bad('the request path may not contain "." or ".." segments');
    if (i === 2 && segments[0] === 'xds' && segments[1] === 'clients') {
      segments[i] = decodeNodeId(s);
      continue;
    }
    if (!SEGMENT.test(s)) throw bad(`path segment "${truncate(s)}" has characters outside [A-Za-z0-9._-]`);
  }
  return { segments, query };
}

function decodeNodeId(raw: string): string {
  if (!ENCODED_SEGMENT.test(raw)) throw bad(`node id "${truncate(raw)}" must be percent-encoded (unreserved characters and %XX only)`);
  let id: string;
  try {
    // decodeURIComponent refuses malformed escapes and invalid UTF-8.
    id = decodeURIComponent(raw);
  } catch {
    throw bad(`node id "${truncate(raw)}" is not valid percent-encoded UTF-8`);
  }
  // eslint-disable-next-line no-control-regex
  if (id === '.' || id === '..' || /[/\\\u0000-\u001f\u007f]/.test(id)) throw bad(`node id "${truncate(raw)}" may not be "." or "..", or contain "/", "\\" or control characters`);
  if (id.length > MAX_NODE_ID) throw bad(`node id is longer than ${MAX_NODE_ID} characters`);
  return id;
}

/** Maps checked segments to a route; unknown paths and kinds are WEFT_ERR_NOT_FOUND (404). */
export function resolveRoute(segments: readonly string[], registry: KindRegistry): Route {
  const [first, group, version, ...rest] = segments;
  if (segments.length === 0 || first === 'ui') return resolveDashboardRoute(segments);
  if (segments.length === 1 && first === 'healthz') return { type: 'healthz' };
  if (segments.length === 1 && first === 'version') return { type: 'version' };
  if (segments.length === 1 && first === 'apply') return { type: 'apply' };
  if (segments.length === 1 && first === 'apis') return { type: 'discovery' };
  if (segments.length === 1 && first === 'metrics') return { type: 'metrics' };
  if (segments.length === 2 && first === 'ca' && CA_OPS.has(group!)) return { type: 'ca', op: group as CaOp };
  if (first === 'xds' && group === 'clients') {
    // /xds/clients, /xds/clients/{nodeId}/config
    if (segments.length === 2) return { type: 'xds-clients' };
    if (segments.length === 4 && rest[0] === 'config') return { type: 'xds-client-config', nodeId: version! };
    throw notFound(segments);
  }
  if (first === 'apis' && group === 'telemetry' && version === 'v1') {
    const op = telemetryOp(rest);
    if (op === undefined) throw notFound(segments);
    return { type: 'telemetry', op };
  }
  if (first !== 'apis' || group === undefined || version === undefined || rest.length === 0) throw notFound(segments);

  // /apis/{g}/{v}/namespaces/{ns}/{plural}[/{name}]
  if (rest[0] === 'namespaces' && (rest.length === 3 || rest.length === 4)) {
    const [, namespace, plural, name] = rest as [string, string, string, string | undefined];
    const kind = kindFor(registry, group, version, plural);
    if (!kind.namespaced) throw new WeftError('WEFT_ERR_NOT_FOUND', `${kind.kind} is cluster-scoped: use /apis/${group}/${version}/${plural} without namespaces/${namespace}`);
    return name === undefined ? { type: 'collection', kind, namespace } : { type: 'object', kind, namespace, name };
  }
  // /apis/{g}/{v}/{plural}[/{name}]
  if (rest.length === 1 || rest.length === 2) {
    const [plural, name] = rest as [string, string | undefined];
    const kind = kindFor(registry, group, version, plural);
    if (name === undefined) return { type: 'collection', kind, namespace: undefined };
    if (kind.namespaced) throw new WeftError('WEFT_ERR_NOT_FOUND', `${kind.kind} is namespaced: use /apis/${group}/${version}/namespaces/{namespace}/${plural}/${name}`);
    return { type: 'object', kind, namespace: '', name };
  }
  throw notFound(segments);
}

function kindFor(registry: KindRegistry, group: string, version: string, plural: string): KindDescriptor {
  const d = registry.byPath(group, version, plural);
  if (d) return d;
  const served = registry.kinds.map((k) => `${k.group}/${k.versions.join('|')}/${k.plural}`).join(', ');
  // 404, as Kubernetes answers for a resource type it does not serve.
  throw new WeftError('WEFT_ERR_NOT_FOUND', `unknown kind: no "${plural}" in ${group}/${version} (served: ${served})`);
}

function notFound(segments: readonly string[]): WeftError {
  return new WeftError('WEFT_ERR_NOT_FOUND', `no such path: /${segments.join('/')}`);
}

function bad(message: string): WeftError {
  return new WeftError('WEFT_ERR_BAD_REQUEST', message);
}

function truncate(s: string): string {
  return s.length > 64 ? `${s.slice(0, 64)}…` : s;
}
