/** nginx as a peer proxy (1 worker, upstream keepalive) and as the static-file upstream. */
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { body1k, BODY_BYTES, childPids, freePort, HOST, startProc, waitReady, which, type Proc } from '../common.js';
import type { Peer, RunningPeer } from './types.js';

function common(tmp: string): string {
  for (const d of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(tmp, d), { recursive: true });
  // As root, nginx workers would drop to `nobody` and could not read the private temp dir.
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  return `${user}worker_processes 1;
daemon off;
pid ${join(tmp, 'nginx.pid')};
error_log ${join(tmp, 'error.log')} warn;
events { worker_connections 4096; multi_accept on; }
`;
}

function httpCommon(tmp: string): string {
  return `access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 120s;
  client_body_temp_path ${join(tmp, 'client_body')};
  proxy_temp_path ${join(tmp, 'proxy')};
  fastcgi_temp_path ${join(tmp, 'fastcgi')};
  uwsgi_temp_path ${join(tmp, 'uwsgi')};
  scgi_temp_path ${join(tmp, 'scgi')};`;
}

async function run(name: string, tmp: string, conf: string, port: number, h2Port?: number): Promise<RunningPeer> {
  const bin = which('nginx')!;
  const file = join(tmp, 'nginx.conf');
  writeFileSync(file, conf);
  const proc: Proc = startProc(name, bin, ['-p', tmp, '-e', join(tmp, 'error.log'), '-c', file]);
  try {
    await waitReady(port, proc, BODY_BYTES);
  } catch (e) {
    await proc.stop();
    throw e;
  }
  return { port, h2Port, procs: [proc], pids: () => [proc.pid, ...childPids(proc.pid)], stop: () => proc.stop('SIGTERM') };
}

export const nginxPeer: Peer = {
  name: 'nginx',
  kind: 'native',
  describe: 'nginx, worker_processes 1, upstream keepalive 64, proxy_http_version 1.1, access_log off',
  missing: () => (which('nginx') === undefined ? 'nginx is not installed (apt-get install nginx-light)' : undefined),
  start: async ({ upstreamPort, tmp, h2 }) => {
    const port = await freePort();
    // nginx 1.22: a cleartext `http2` listen speaks only h2c (prior knowledge), hence a second port.
    const h2Port = h2 === true ? await freePort() : undefined;
    const conf = `${common(tmp)}http {
  ${httpCommon(tmp)}
  upstream up { server ${HOST}:${upstreamPort}; keepalive 64; keepalive_requests 100000000; }
  server {
    listen ${HOST}:${port} reuseport backlog=4096;${h2Port === undefined ? '' : `\n    listen ${HOST}:${h2Port} http2;\n    http2_max_concurrent_streams 128;`}
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
    return run('nginx', tmp, conf, port, h2Port);
  },
};

/** nginx serving the same 1 KB body as a static file (an upstream option). */
export async function startNginxUpstream(tmp: string): Promise<RunningPeer> {
  const port = await freePort();
  const www = join(tmp, 'www');
  mkdirSync(www, { recursive: true });
  writeFileSync(join(www, 'body.txt'), body1k());
  const conf = `${common(tmp)}http {
  ${httpCommon(tmp)}
  sendfile on;
  tcp_nopush on;
  open_file_cache max=16 inactive=60s;
  etag off;
  server {
    listen ${HOST}:${port} reuseport backlog=4096;
    root ${www};
    default_type text/plain;
    location / { try_files /body.txt =404; }
  }
}
`;
  return run('nginx-upstream', tmp, conf, port);
}
