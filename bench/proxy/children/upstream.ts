/** The node:http upstream: answers every request with the same 1 KB body, keep-alive. */
import { createServer } from 'node:http';
import { BODY_BYTES, body1k, HOST } from '../common.js';
import { args, watchdog } from './watchdog.js';

const port = Number(args().port);
const body = body1k();
const server = createServer({ keepAlive: true }, (req, res) => {
  // Drain any request body, then answer.
  req.resume();
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY_BYTES });
  res.end(body);
});
server.keepAliveTimeout = 120_000;
server.listen(port, HOST);
watchdog(() => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }));
