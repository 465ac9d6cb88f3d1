// catalog: an HTTP service in two versions (CATALOG_VERSION). It asks inventory
// (gRPC) for stock through the mesh. CATALOG_FAIL_RATE makes an instance flaky:
// that share of its answers is a 503, which the callers' retries and outlier
// detection (BackendPolicy catalog-resilience) keep from reaching users.
import * as grpc from '@grpc/grpc-js';
import { createServer } from 'node:http';
import { InventoryClient } from './inventory-api.mjs';
import { listenAddress, onStop, sendJson, serviceUrl } from './mesh.mjs';

const version = process.env.CATALOG_VERSION ?? 'v1';
const instance = process.env.CATALOG_INSTANCE ?? `${version}-${process.pid}`;
const failRate = Math.min(Math.max(Number(process.env.CATALOG_FAIL_RATE ?? 0), 0), 1);
const names = { tea: 'Green tea', kettle: 'Kettle', mug: 'Mug', teapot: 'Teapot' };

// gRPC through the sidecar: dial its outbound listener and name the Service in
// :authority, which is what the mesh routes by. grpc-js would otherwise turn
// HTTP_PROXY into a CONNECT tunnel around the mesh's routing.
const inventory = new InventoryClient(process.env.WEFT_OUTBOUND ?? '127.0.0.1:15001', grpc.credentials.createInsecure(), {
  'grpc.default_authority': new URL(serviceUrl('inventory')).host,
  'grpc.enable_http_proxy': 0,
});

function stockOf(skus) {
  return new Promise((resolve) => {
    inventory.stock({ skus }, { deadline: Date.now() + 2000 }, (err, reply) => resolve(err ? { error: `${grpc.status[err.code] ?? err.code}: ${err.details}` } : reply));
  });
}

let served = 0;
const server = createServer(async (req, res) => {
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  if (path === '/healthz') return sendJson(res, 200, { ok: true });
  if (path !== '/items') return sendJson(res, 404, { error: `no such path: ${path}` });
  // Deterministic flakiness (e.g. 3 of every 10 at 0.3) so its effect can be counted.
  const n = served++;
  if (failRate > 0 && (n % 10) < Math.round(failRate * 10)) return sendJson(res, 503, { error: 'flaky instance', version, instance });
  const stock = await stockOf(Object.keys(names));
  const items = Object.entries(names).map(([sku, name]) => ({ sku, name, stock: stock.items?.find((i) => i.sku === sku)?.stock ?? null }));
  sendJson(res, 200, { service: 'catalog', version, instance, inventory: stock.error ?? 'ok', items });
});

const { host, port } = listenAddress();
server.listen(port, host, () => console.log(`catalog ${version} (${instance}${failRate > 0 ? `, fails ${Math.round(failRate * 100)}%` : ''}) listening on ${host}:${server.address().port}`));
onStop(() => new Promise((resolve) => { inventory.close(); server.close(() => resolve()); server.closeIdleConnections(); }));
