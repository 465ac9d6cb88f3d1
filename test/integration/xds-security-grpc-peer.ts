/**
 * Child process of xds-security-grpc.test.ts (its bootstrap, from
 * GRPC_XDS_BOOTSTRAP, is read once per process): a proxyless gRPC peer with
 * xDS security credentials (insecure fallback, so TLS comes only from what the
 * control plane sends).
 *
 *   server PROTO IP:PORT NAME  — XdsServer; prints `serving`; answers
 *     NAME|<transport security>|<client certificate SANs>
 *   client PROTO TARGET        — one call; prints the answer or `error:<code> <details>`
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as xds from '@grpc/grpc-js-xds';

const [mode, protoPath, arg, name] = process.argv.slice(2);
if ((mode !== 'server' && mode !== 'client') || !protoPath || !arg) throw new Error('usage: xds-security-grpc-peer server|client PROTO ADDR|TARGET [NAME]');
xds.register();
const def = protoLoader.loadSync(protoPath, { keepCase: true });
type EchoClient = grpc.Client & { Call(req: { msg: string }, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, reply?: { backend: string }) => void): void };
const pkg = grpc.loadPackageDefinition(def) as unknown as { weft: { test: { Echo: grpc.ServiceClientConstructor } } };

if (mode === 'server') {
  const server = new xds.XdsServer();
  server.addService(pkg.weft.test.Echo.service, {
    Call: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<{ backend: string }>) => {
      const auth = call.getAuthContext();
      cb(null, { backend: `${name ?? 'server'}|${auth.transportSecurityType ?? 'none'}|${auth.sslPeerCertificate?.subjectaltname ?? ''}` });
    },
  });
  server.bindAsync(arg, new xds.XdsServerCredentials(grpc.ServerCredentials.createInsecure()), (err) => {
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
} else {
  const client = new pkg.weft.test.Echo(arg, new xds.XdsChannelCredentials(grpc.credentials.createInsecure())) as unknown as EchoClient;
  client.Call({ msg: 'hi' }, { deadline: Date.now() + 10_000 }, (err, reply) => {
    process.stdout.write(`${err ? `error:${err.code} ${err.details}` : (reply?.backend ?? 'empty')}\n`);
    client.close();
    process.exit(0);
  });
}
