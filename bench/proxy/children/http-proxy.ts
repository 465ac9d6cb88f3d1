/** Peer: the `http-proxy` package (node-http-proxy) in front of the upstream, keep-alive agent. */
import { Agent, createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { HOST } from '../common.js';
import { args, watchdog } from './watchdog.js';

interface HttpProxyServer {
  web(req: IncomingMessage, res: ServerResponse): void;
  on(ev: 'error', fn: (err: Error, req: IncomingMessage, res: ServerResponse) => void): void;
}
// http-proxy ships no types (and @types/http-proxy is not a dependency): a narrow local one.
const httpProxy = createRequire(import.meta.url)('http-proxy') as { createProxyServer(o: Record<string, unknown>): HttpProxyServer };

const a = args();
const agent = new Agent({ keepAlive: true, maxSockets: 256 });
const proxy = httpProxy.createProxyServer({ target: `http://${HOST}:${a.upstream}`, agent, xfwd: false });
proxy.on('error', (_e, _req, res) => {
  if (!res.headersSent) res.writeHead(502);
  res.end();
});
const server = createServer({ keepAlive: true }, (req, res) => proxy.web(req, res));
server.keepAliveTimeout = 120_000;
server.listen(Number(a.port), HOST);
watchdog(() => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); agent.destroy(); }));
