import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../lib/log.js';
import { openFileStore } from '../../store/file/file-store.js';
import type { ConfigStore } from '../../store/types.js';
import { createApiServer, type ApiServer, type ApiServerOptions } from './server.js';

const TOKEN = 'test-token';
const log = createLogger('test', 'silent');
let dir: string;
let store: ConfigStore;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-api-server-'));
  store = await openFileStore(join(dir, 'store'), { logger: log });
});

after(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

/** The store with some methods replaced (failure injection). */
function withOverrides(s: ConfigStore, overrides: Partial<ConfigStore>): ConfigStore {
  return {
    get: (k) => s.get(k),
    list: (o) => s.list(o),
    put: (r, o) => s.put(r, o),
    putMany: (r, o) => s.putMany(r, o),
    delete: (k, o) => s.delete(k, o),
    watch: (o, cb) => s.watch(o, cb),
    revision: () => s.revision(),
    close: () => s.close(),
    ...overrides,
  };
}

async function serve(opts: Partial<ApiServerOptions> = {}): Promise<{ server: ApiServer; url: string }> {
  const server = createApiServer({ store, adminToken: TOKEN, log, ...opts });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

function close(server: ApiServer): Promise<void> {
  return new Promise((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
}

test('an unexpected error is a generic 500 Status, and the server keeps serving', async () => {
  const { server, url } = await serve({
    store: withOverrides(store, {
      list: () => Promise.reject(new Error('disk on fire: /secret/path')),
    }),
  });
  try {
    const res = await fetch(`${url}/apis/weft.dev/v1alpha1/services`);
    assert.equal(res.status, 500);
    const body = (await res.json()) as { kind: string; reason: string; message: string };
    assert.equal(body.kind, 'Status');
    assert.equal(body.reason, 'WEFT_ERR_INTERNAL');
    assert.doesNotMatch(body.message, /secret/);
    const ok = await fetch(`${url}/healthz`);
    assert.equal(ok.status, 200);
    await ok.text();
  } finally {
    await close(server);
  }
});

test('a store that throws synchronously is caught too', async () => {
  const { server, url } = await serve({
    store: withOverrides(store, {
      watch: () => {
        throw new TypeError('boom');
      },
    }),
  });
  try {
    const res = await fetch(`${url}/apis/weft.dev/v1alpha1/services?watch=true`);
    assert.equal(res.status, 500);
    await res.text();
  } finally {
    await close(server);
  }
});

test('healthz is 503 when the store is not available', async () => {
  const { server, url } = await serve({
    store: withOverrides(store, { revision: () => Promise.reject(new Error('closed')) }),
  });
  try {
    const res = await fetch(`${url}/healthz`);
    assert.equal(res.status, 503);
    assert.equal(((await res.json()) as { reason: string }).reason, 'WEFT_ERR_UNAVAILABLE');
  } finally {
    await close(server);
  }
});

test('BOOKMARK lines keep an idle watch alive', async () => {
  const { server, url } = await serve({ bookmarkIntervalMs: 10 });
  try {
    const abort = new AbortController();
    const res = await fetch(`${url}/apis/weft.dev/v1alpha1/services?watch=true`, { signal: abort.signal });
    const reader = res.body!.getReader();
    let text = '';
    while ((text.match(/BOOKMARK/g) ?? []).length < 2) {
      const { value, done } = await reader.read();
      assert.equal(done, false);
      text += new TextDecoder().decode(value);
    }
    const rv = String(await store.revision());
    for (const line of text.trim().split('\n')) {
      assert.deepEqual(JSON.parse(line), { type: 'BOOKMARK', object: { metadata: { resourceVersion: rv } } });
    }
    abort.abort();
  } finally {
    await close(server);
  }
});

test('close() ends open watch streams instead of waiting for the clients', async () => {
  const { server, url } = await serve();
  const res = await fetch(`${url}/apis/weft.dev/v1alpha1/services?watch=true`);
  const reader = res.body!.getReader();
  await reader.read(); // the stream is open (at least the first BOOKMARK arrived)
  assert.equal(server.openWatches, 1);
  await close(server);
  assert.equal(server.openWatches, 0);
  for (;;) {
    const { done } = await reader.read();
    if (done) break;
  }
});
