/**
 * A minimal reverse proxy (no routing, no filters) for an A/B of upstream HTTP/1.1
 * clients only: `--client agent` (http.request over a keep-alive Agent, what Weft
 * uses) or `--client undici` (undici Pool.dispatch, streaming both ways with
 * back-pressure). Used by client-ab.ts to bound what swapping the client can bring.
 */
import { Agent, createServer, request } from 'node:http';
import { Pool } from 'undici';
import { HOST } from '../common.js';
import { args, watchdog } from './watchdog.js';

const a = args();
const upstream = Number(a.upstream);
const server = createServer({ keepAlive: true });
if (a.client === 'undici') {
  const pool = new Pool(`http://${HOST}:${upstream}`, { connections: 256, pipelining: 1, keepAliveTimeout: 60_000 });
  server.on('request', (req, res) => {
    const headers: string[] = [];
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() !== 'connection') headers.push(raw[i]!, raw[i + 1]!);
    const bodyless = req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined;
    pool.dispatch({ method: req.method as 'GET', path: req.url ?? '/', headers, body: bodyless ? null : req }, {
      onConnect() {},
      onHeaders(status: number, rawH: Buffer[], resume: () => void) {
        const out: string[] = [];
        for (let i = 0; i < rawH.length; i += 2) {
          const k = rawH[i]!.toString('latin1');
          const lk = k.toLowerCase();
          if (lk !== 'connection' && lk !== 'keep-alive' && lk !== 'transfer-encoding') out.push(k, rawH[i + 1]!.toString('latin1'));
        }
        res.writeHead(status, out);
        res.on('drain', () => resume());
        return true;
      },
      onData(chunk: Buffer) { return res.write(chunk); },
      onComplete() { res.end(); },
      onError() { if (!res.headersSent) { res.writeHead(502); res.end(); } else res.destroy(); },
    } as never);
  });
} else {
  const agent = new Agent({ keepAlive: true, maxSockets: 256, scheduling: 'lifo' });
  server.on('request', (req, res) => {
    const headers: string[] = [];
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() !== 'connection') headers.push(raw[i]!, raw[i + 1]!);
    const r = request({ host: HOST, port: upstream, method: req.method, path: req.url, headers, agent, setHost: false });
    r.on('error', () => { if (!res.headersSent) { res.writeHead(502); res.end(); } else res.destroy(); });
    r.on('response', (up) => {
      const out: string[] = [];
      const rawH = up.rawHeaders;
      for (let i = 0; i < rawH.length; i += 2) {
        const lk = rawH[i]!.toLowerCase();
        if (lk !== 'connection' && lk !== 'keep-alive' && lk !== 'transfer-encoding') out.push(rawH[i]!, rawH[i + 1]!);
      }
      res.writeHead(up.statusCode ?? 502, out);
      up.pipe(res);
    });
    if (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined) r.end();
    else req.pipe(r);
  });
}
server.listen(Number(a.port), HOST);
watchdog(() => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }));
