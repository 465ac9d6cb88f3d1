// HTTP for end-to-end tests: tiny app servers that say who they are, and a client
// that talks to a proxy's outbound listener in explicit-proxy style.
import { execFile } from 'node:child_process';
import { Agent, createServer, request, type Server } from 'node:http';

export interface App {
  readonly name: string;
  readonly port: number;
  /** Requests served. */
  served: number;
  /** Stops accepting and drops every connection at once. */
  close(): Promise<void>;
}

/**
 * An app on 127.0.0.1:0 answering every request with its name (body and
 * `x-app` header). `/slow?ms=N` answers after N ms (for drain tests).
 */
export function startApp(name: string): Promise<App> {
  return new Promise((resolve, reject) => {
    const server: Server = createServer((req, res) => {
      app.served++;
      const u = new URL(req.url ?? '/', 'http://app');
      const reply = (): void => {
        res.writeHead(200, { 'content-type': 'text/plain', 'x-app': name });
        res.end(name);
      };
      if (u.pathname === '/slow') setTimeout(reply, Number(u.searchParams.get('ms') ?? '500'));
      else reply();
    });
    const app: App = {
      name,
      port: 0,
      served: 0,
      close: () => new Promise<void>((res) => {
        server.close(() => res());
        server.closeAllConnections();
      }),
    };
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      (app as { port: number }).port = (server.address() as { port: number }).port;
      resolve(app);
    });
  });
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * GET `url` (absolute: `http://catalog.default/`) through an explicit proxy at
 * `proxy` (`host:port`), as `curl -x` does: absolute-form request target and the
 * URL's authority as Host.
 */
export function viaProxy(proxy: string, url: string, agent: Agent, headers: Record<string, string> = {}): Promise<Reply> {
  const i = proxy.lastIndexOf(':');
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: proxy.slice(0, i), port: Number(proxy.slice(i + 1)), method: 'GET', path: url, agent, headers: { host: u.host, ...headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${url} via ${proxy}: no answer in 10 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** Runs `n` requests, `concurrency` at a time; returns every reply in order. */
export async function many(n: number, concurrency: number, one: (i: number) => Promise<Reply>): Promise<Reply[]> {
  const out: Reply[] = new Array<Reply>(n);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      out[i] = await one(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return out;
}

/** Counts of `key(reply)`. */
export function tally(replies: readonly Reply[], key: (r: Reply) => string): Record<string, number> {
  const t: Record<string, number> = {};
  for (const r of replies) t[key(r)] = (t[key(r)] ?? 0) + 1;
  return t;
}

/** `curl -sS -x http://PROXY URL`: status code, response headers (lower-cased names) and body. */
export function curl(proxy: string, url: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '--max-time', '10', '-x', `http://${proxy}`, '-D', '-', url], { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err !== null) return reject(new Error(`curl ${url}: ${err.message} ${stderr}`));
      const sep = stdout.indexOf('\r\n\r\n');
      const head = stdout.slice(0, sep).split('\r\n');
      const status = Number(/^HTTP\/\S+ (\d{3})/.exec(head[0] ?? '')?.[1] ?? 0);
      const headers: Record<string, string> = {};
      for (const l of head.slice(1)) {
        const c = l.indexOf(':');
        if (c > 0) headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
      }
      resolve({ status, headers, body: stdout.slice(sep + 4) });
    });
  });
}
