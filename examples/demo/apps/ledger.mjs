// ledger: a plain TCP line service. Each line is recorded and answered with
// "ok <sequence> <line>". web writes a line per visit; the mesh carries it as
// opaque TCP (TCPRoute ledger).
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { listenAddress, onStop } from './mesh.mjs';

let seq = 0;
const sockets = new Set();
const server = createServer((socket) => {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', () => {});
  createInterface({ input: socket }).on('line', (line) => {
    seq++;
    socket.write(`ok ${seq} ${line}\n`);
  });
});

const { host, port } = listenAddress();
server.listen(port, host, () => console.log(`ledger listening on ${host}:${server.address().port} (TCP)`));
onStop(() => new Promise((resolve) => {
  server.close(() => resolve());
  for (const s of sockets) s.end();
}));
