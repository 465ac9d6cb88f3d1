import { resolves, startNodeChild } from './node-child.js';
import type { Peer } from './types.js';

export const httpProxyPeer: Peer = {
  name: 'http-proxy',
  kind: 'node',
  describe: 'http-proxy (node-http-proxy) on node:http, keep-alive Agent to the upstream',
  missing: () => (resolves('http-proxy') ? undefined : 'npm package http-proxy is not installed (npm install)'),
  start: (ctx) => startNodeChild('http-proxy', 'http-proxy', ctx),
};
