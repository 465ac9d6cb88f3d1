// Idle-memory guard: a proxy with a static bootstrap must not load the xDS client
// (@grpc/grpc-js + the xDS protos, ~15-20 MB of RSS); one with an xDS server must.
// Checked in a fresh node process (this test file's own imports do not count). No timings.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const PROXY = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), '../../src/proxy/proxy.js')).href;

/** Starts a proxy in a child node with `opts` and reports whether grpc-js was loaded. */
function grpcLoaded(opts: Record<string, unknown>): Promise<{ loaded: boolean; ready: boolean }> {
  const script = `
    import { createRequire } from 'node:module';
    const { startProxy } = await import(${JSON.stringify(PROXY)});
    const p = await startProxy(${JSON.stringify({ adminAddr: '127.0.0.1:0', logLevel: 'silent', ...opts })});
    const cache = createRequire(import.meta.url).cache;
    const loaded = Object.keys(cache).some((k) => k.includes('@grpc/grpc-js'));
    const ready = (await fetch(p.adminUrl + '/ready')).status === 200;
    await p.close();
    process.stdout.write(JSON.stringify({ loaded, ready }));
    process.exit(0);
  `;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err !== null) return reject(new Error(`${err.message}\n${stderr}`));
      resolve(JSON.parse(stdout) as { loaded: boolean; ready: boolean });
    });
  });
}

describe('proxy idle footprint', () => {
  test('a static bootstrap does not load grpc-js (the ADS client is imported lazily)', async () => {
    const r = await grpcLoaded({ bootstrap: { static_resources: { listeners: [], clusters: [] } } });
    assert.deepEqual(r, { loaded: false, ready: true });
  });

  test('an xDS server loads it', async () => {
    // Nothing listens there: the client just keeps retrying until close().
    const r = await grpcLoaded({ xdsAddresses: ['127.0.0.1:9'] });
    assert.equal(r.loaded, true);
    assert.equal(r.ready, false);
  });
});
