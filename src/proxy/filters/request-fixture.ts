/** A FilterRequest for unit tests of filters (no socket, no proxy). */
import type { DownstreamConnection, FilterRequest } from './types.js';

export interface FixtureRequest extends FilterRequest {
  /** Header changes the filter asked for, in order: [name, value] for set, [name, undefined] for remove. */
  readonly changes: [string, string | undefined][];
}

export function fixtureRequest(over: Partial<Omit<FilterRequest, 'connection'>> & { connection?: Partial<DownstreamConnection> } = {}): FixtureRequest {
  const changes: [string, string | undefined][] = [];
  const { connection, ...rest } = over;
  return {
    method: 'GET',
    path: '/',
    authority: 'svc.default',
    headers: {},
    cluster: 'c',
    grpc: false,
    metadata: new Map(),
    setRequestHeader: (n, v) => { changes.push([n.toLowerCase(), v]); },
    removeRequestHeader: (n) => { changes.push([n.toLowerCase(), undefined]); },
    ...rest,
    connection: { remoteAddress: '127.0.0.1', remotePort: 40000, localAddress: '127.0.0.1', localPort: 15006, tls: false, peerPrincipal: undefined, serverName: undefined, ...connection },
    changes,
  };
}
