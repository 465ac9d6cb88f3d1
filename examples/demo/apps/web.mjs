// web: the front end. Each page view calls catalog (HTTP, split 80/20 between
// v1 and v2 by the HTTPRoute) and records the visit in ledger (TCP), both
// through the sidecar. Answers JSON, or a small HTML page to a browser.
import { createServer } from 'node:http';
import { connect } from 'node:net';
import { getViaMesh, listenAddress, onStop, sendJson, serviceUrl } from './mesh.mjs';

/** One line to ledger and its answer, over the sidecar's local TCP port for ledger. */
function record(line) {
  const url = new URL(serviceUrl('ledger'));
  return new Promise((resolve) => {
    const s = connect(Number(url.port), url.hostname);
    let buf = '';
    const done = (v) => { s.destroy(); resolve(v); };
    s.setTimeout(2000, () => done('error: timeout'));
    s.on('error', (e) => done(`error: ${e.code ?? e.message}`));
    s.on('data', (c) => {
      buf += c;
      const i = buf.indexOf('\n');
      if (i >= 0) done(buf.slice(0, i));
    });
    s.on('connect', () => s.write(`${line}\n`));
  });
}

function page(v) {
  const rows = (v.catalog.items ?? []).map((i) => `<tr><td>${i.name}</td><td>${i.stock ?? '?'}</td></tr>`).join('');
  return `<!doctype html><meta charset="utf-8"><title>Weft demo shop</title>
<h1>Weft demo shop</h1>
<p>catalog answered with version <b>${v.catalog.version ?? '?'}</b> (${v.catalog.instance ?? v.catalog.error ?? ''}); inventory: ${v.catalog.inventory ?? '?'}; ledger: ${v.ledger}</p>
<table><tr><th>item</th><th>stock</th></tr>${rows}</table>
<p>Reload to see the 80/20 split. The mesh: <a href="http://127.0.0.1:15020/ui/">dashboard</a> (or the URL weft up printed).</p>`;
}

const catalogUrl = `${serviceUrl('catalog')}/items`;
const server = createServer(async (req, res) => {
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  if (path === '/healthz') return sendJson(res, 200, { ok: true });
  if (path !== '/') return sendJson(res, 404, { error: `no such path: ${path}` });
  const started = Date.now();
  const canary = req.headers['x-canary'];
  const [catalog, ledger] = await Promise.all([
    getViaMesh(catalogUrl, canary ? { headers: { 'x-canary': String(canary) } } : {}).then(
      (r) => (r.status === 200 && typeof r.body === 'object' ? r.body : { error: `catalog answered ${r.status} ${r.headers['x-weft-response-flags'] ?? ''}`.trim() }),
      (e) => ({ error: `catalog unreachable: ${e.message}` }),
    ),
    record(`visit ${new Date().toISOString()}`),
  ]);
  const view = { service: 'web', catalog, ledger, ms: Date.now() - started };
  const status = catalog.error === undefined ? 200 : 502;
  if ((req.headers.accept ?? '').includes('text/html')) {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' });
    return res.end(page(view));
  }
  sendJson(res, status, view);
});

const { host, port } = listenAddress();
server.listen(port, host, () => console.log(`web listening on http://${host}:${server.address().port}/`));
onStop(() => new Promise((resolve) => { server.close(() => resolve()); server.closeIdleConnections(); }));
