// inventory: a gRPC service (weft.demo.Inventory: Stock, Reserve). catalog calls
// it through the mesh; the GRPCRoute names its Reserve method.
import * as grpc from '@grpc/grpc-js';
import { INVENTORY } from './inventory-api.mjs';
import { listenAddress, onStop } from './mesh.mjs';

const stock = new Map([['tea', 42], ['kettle', 7], ['mug', 120], ['teapot', 3]]);
const server = new grpc.Server();
server.addService(INVENTORY, {
  stock: (call, cb) => {
    const skus = Array.isArray(call.request?.skus) ? call.request.skus : [...stock.keys()];
    cb(null, { items: skus.map((sku) => ({ sku, stock: stock.get(sku) ?? 0 })) });
  },
  reserve: (call, cb) => {
    const { sku, count = 1 } = call.request ?? {};
    const have = stock.get(sku);
    if (have === undefined) return cb({ code: grpc.status.NOT_FOUND, details: `no such item: ${sku}` });
    if (have < count) return cb({ code: grpc.status.FAILED_PRECONDITION, details: `only ${have} left` });
    stock.set(sku, have - count);
    cb(null, { sku, left: have - count });
  },
});

const { host, port } = listenAddress();
server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
  if (err) {
    console.error(`inventory: cannot listen on ${host}:${port}: ${err.message}`);
    process.exit(1);
  }
  console.log(`inventory listening on ${host}:${bound} (gRPC)`);
});
onStop(() => new Promise((resolve) => server.tryShutdown(() => resolve())));
