/** Peer: fastify + @fastify/http-proxy (undici pool to the upstream), logger off. */
import Fastify from 'fastify';
import fastifyHttpProxy from '@fastify/http-proxy';
import { HOST } from '../common.js';
import { args, watchdog } from './watchdog.js';

const a = args();
const app = Fastify({ logger: false, keepAliveTimeout: 120_000 });
await app.register(fastifyHttpProxy, { upstream: `http://${HOST}:${a.upstream}` });
await app.listen({ port: Number(a.port), host: HOST });
watchdog(() => app.close());
