// The inventory gRPC service's definition, shared by its server and its clients.
// Messages are JSON (a codec, not .proto files) to keep the demo dependency-free
// beyond @grpc/grpc-js; on the wire it is ordinary gRPC over HTTP/2.
import * as grpc from '@grpc/grpc-js';

const json = {
  serialize: (v) => Buffer.from(JSON.stringify(v)),
  deserialize: (b) => JSON.parse(b.toString('utf8')),
};
const unary = (name) => ({
  path: `/weft.demo.Inventory/${name}`,
  requestStream: false,
  responseStream: false,
  requestSerialize: json.serialize,
  requestDeserialize: json.deserialize,
  responseSerialize: json.serialize,
  responseDeserialize: json.deserialize,
});

export const INVENTORY = { stock: unary('Stock'), reserve: unary('Reserve') };
export const InventoryClient = grpc.makeGenericClientConstructor(INVENTORY, 'Inventory');
