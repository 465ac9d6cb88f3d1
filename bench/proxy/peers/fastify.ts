import { resolves, startNodeChild } from './node-child.js';
import type { Peer } from './types.js';

export const fastifyPeer: Peer = {
  name: 'fastify',
  kind: 'node',
  describe: 'fastify + @fastify/http-proxy (undici pool to the upstream), logger off',
  missing: () => (resolves('fastify') && resolves('@fastify/http-proxy') ? undefined : 'npm packages fastify / @fastify/http-proxy are not installed (npm install)'),
  start: (ctx) => startNodeChild('fastify', 'fastify', ctx),
};
