// What every demo app shares: where to listen, how to call another Service through
// the sidecar (explicit mode: the sidecar is HTTP_PROXY), and a clean stop.
// Plain Node, no dependencies: this is what an application under `weft run` sees.
import { Agent, request } from 'node:http';

/** Where `weft run` says the app is reached: $WEFT_WORKLOAD_ADDRESS:$PORT. */
export function listenAddress() {
  return { host: process.env.WEFT_WORKLOAD_ADDRESS ?? '127.0.0.1', port: Number(process.env.PORT ?? 0) };
}

/** $WEFT_<NAME>_URL, e.g. serviceUrl('catalog') → http://catalog.default */
export function serviceUrl(name) {
  const key = `WEFT_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_URL`;
  const v = process.env[key];
  if (v === undefined || v === '') throw new Error(`${key} is not set: is ${name} a Service of the mesh, and does this app run under weft run?`);
  return v;
}

const proxy = new URL(process.env.HTTP_PROXY ?? 'http://127.0.0.1:15001');
// One pool of connections to the sidecar: calls to every Service share it.
const agent = new Agent({ keepAlive: true, maxSockets: 32 });

/** GET `url` through the sidecar; resolves with {status, headers, body} (body parsed when JSON). */
export function getViaMesh(url, { headers = {}, timeoutMs = 5000 } = {}) {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: proxy.hostname, port: Number(proxy.port), method: 'GET', path: target.href, agent, headers: { host: target.host, ...headers }, timeout: timeoutMs },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c) => (text += c));
        res.on('end', () => {
          let body = text;
          if ((res.headers['content-type'] ?? '').includes('json')) {
            try { body = JSON.parse(text); } catch { /* keep the text */ }
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** SIGTERM/SIGINT: stop taking work, let `close` finish what is in flight, exit 0. */
export function onStop(close) {
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    Promise.resolve(close()).then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

export function sendJson(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
