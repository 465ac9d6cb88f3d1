/**
 * Child process of xds-grpc.test.ts: a proxyless gRPC client (@grpc/grpc-js-xds)
 * whose bootstrap comes from GRPC_XDS_BOOTSTRAP_CONFIG (read once per process,
 * which is why it runs in its own process). Reads JSON commands, one per line,
 * on stdin; answers one JSON line per command on stdout.
 *
 *   {"id":1,"n":1000,"metadata":{"x-tag":"canary"},"concurrency":10}
 *   → {"id":1,"counts":{"a":801,"b":199},"errors":{}}
 */
import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as xds from '@grpc/grpc-js-xds';

interface Command {
  id: number;
  n: number;
  metadata?: Record<string, string>;
  concurrency?: number;
  deadlineMs?: number;
  /** Another xds:/// target than the one on the command line (a channel per target, kept open). */
  target?: string;
}

type EchoClient = grpc.Client & {
  Call(req: { msg: string }, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, reply?: { backend: string }) => void): void;
};

const [protoPath, target] = process.argv.slice(2);
if (!protoPath || !target) throw new Error('usage: xds-grpc-client PROTO TARGET');
xds.register();
const def = protoLoader.loadSync(protoPath, { keepCase: true });
const pkg = grpc.loadPackageDefinition(def) as unknown as { weft: { test: { Echo: new (t: string, c: grpc.ChannelCredentials) => EchoClient } } };
const client = new pkg.weft.test.Echo(target, grpc.credentials.createInsecure());
const clients = new Map<string, EchoClient>([[target, client]]);

function clientFor(t: string | undefined): EchoClient {
  if (t === undefined) return client;
  let c = clients.get(t);
  if (c === undefined) clients.set(t, (c = new pkg.weft.test.Echo(t, grpc.credentials.createInsecure())));
  return c;
}

function call(md: grpc.Metadata, deadlineMs: number, client: EchoClient): Promise<string> {
  return new Promise((resolve) => {
    client.Call({ msg: 'hi' }, md, { deadline: Date.now() + deadlineMs }, (err, reply) => {
      resolve(err ? `error:${grpc.status[err.code] ?? err.code}` : (reply?.backend ?? 'empty'));
    });
  });
}

async function run(cmd: Command): Promise<void> {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(cmd.metadata ?? {})) md.set(k, v);
  const counts: Record<string, number> = {};
  const errors: Record<string, number> = {};
  let left = cmd.n;
  const worker = async (): Promise<void> => {
    while (left > 0) {
      left--;
      const r = await call(md, cmd.deadlineMs ?? 5000, clientFor(cmd.target));
      if (r.startsWith('error:')) errors[r] = (errors[r] ?? 0) + 1;
      else counts[r] = (counts[r] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, cmd.concurrency ?? 1) }, worker));
  process.stdout.write(`${JSON.stringify({ id: cmd.id, counts, errors })}\n`);
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (line.trim() === '') return;
  void run(JSON.parse(line) as Command);
});
rl.on('close', () => {
  for (const c of clients.values()) c.close();
  process.exit(0);
});
