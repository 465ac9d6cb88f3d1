/**
 * Child process of xds-grpc.test.ts: a gRPC server configured over xDS
 * (XdsServer, gRFC A36), bootstrap from GRPC_XDS_BOOTSTRAP_CONFIG. It serves
 * only once Weft has sent the Listener for its address; then it prints
 * `serving` on stdout. Answers every Echo call with its name. Exits when
 * stdin closes.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as xds from '@grpc/grpc-js-xds';

const [protoPath, address, name] = process.argv.slice(2);
if (!protoPath || !address || !name) throw new Error('usage: xds-grpc-server PROTO IP:PORT NAME');
// Without register() the HTTP filters (the router among them) are unknown and the
// server NACKs every Listener.
xds.register();
const def = protoLoader.loadSync(protoPath, { keepCase: true });
const pkg = grpc.loadPackageDefinition(def) as unknown as { weft: { test: { Echo: grpc.ServiceClientConstructor } } };
const server = new xds.XdsServer();
server.addService(pkg.weft.test.Echo.service, {
  Call: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<{ backend: string }>) => cb(null, { backend: name }),
});
server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) {
    process.stderr.write(`bind failed: ${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write('serving\n');
});
process.stdin.resume();
process.stdin.on('end', () => {
  server.forceShutdown();
  process.exit(0);
});
