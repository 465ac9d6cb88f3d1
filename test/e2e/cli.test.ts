// The built `weft` binary end to end: real processes (a control plane on port 0
// with its own data directory, and one CLI process per command), no sleeps.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';

// dist/test/e2e/ → the repository root; commands run there so file names in errors are relative.
const ROOT = resolve(fileURLToPath(import.meta.url), '../../../..');
const CLI = join(ROOT, 'dist/src/cli/main.js');
const FIX = 'test/fixtures/cli';
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

const started = new Set<ChildProcess>();
let tmp: string;

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'weft-cli-e2e-'));
});

after(async () => {
  for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  await rm(tmp, { recursive: true, force: true });
});

/** The environment of every child: none of the developer's WEFT_* settings, a private HOME. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('WEFT_')) env[k] = v;
  return { ...env, HOME: tmp, NO_COLOR: '1', ...extra };
}

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `weft ARGS` to completion. */
function weft(args: readonly string[], opts: { input?: string; env?: Record<string, string> } = {}): Promise<Result> {
  return new Promise((resolvePromise, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: childEnv(opts.env), stdio: ['pipe', 'pipe', 'pipe'] });
    started.add(p);
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    p.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    p.on('error', reject);
    p.on('close', (code) => {
      started.delete(p);
      resolvePromise({ code, stdout, stderr });
    });
    p.stdin.end(opts.input ?? '');
  });
}

function lines(s: string): string[] {
  return s.split('\n').filter((l) => l !== '');
}

/** A failure is one `error:` line (plus field lines) and never a stack without -v. */
function assertCleanFailure(r: Result, code = 1): void {
  assert.equal(r.code, code, `exit code; stderr:\n${r.stderr}`);
  assert.equal(lines(r.stderr).filter((l) => l.startsWith('error: ')).length, 1, r.stderr);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack without -v');
}

interface Control {
  proc: ChildProcess;
  apiUrl: string;
  stderr: () => string;
}

/** Starts `weft control` and resolves on its ready line. */
function startControl(dataDir: string, extra: readonly string[] = []): Promise<Control> {
  return new Promise((resolvePromise, reject) => {
    const proc = spawn(process.execPath, [CLI, 'control', '--data-dir', dataDir, '--api-addr', '127.0.0.1:0', '--xds-addr', '127.0.0.1:0', '--log-level', 'warn', ...extra], {
      cwd: ROOT,
      env: childEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    started.add(proc);
    let stderr = '';
    proc.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const rl = createInterface({ input: proc.stdout });
    rl.on('line', (line) => {
      const m = /^weft control ready: api=(\S+)(?: xds=\S+)? data=(\S+)$/.exec(line);
      if (m) resolvePromise({ proc, apiUrl: m[1]!, stderr: () => stderr });
    });
    proc.on('exit', (code, signal) => {
      started.delete(proc);
      reject(new Error(`weft control exited (${code ?? signal}) before it was ready:\n${stderr}`));
    });
  });
}

function killHard(p: ChildProcess): Promise<void> {
  return new Promise((resolvePromise) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolvePromise();
    p.once('exit', () => resolvePromise());
    p.kill('SIGKILL');
  });
}

/** A port where nothing listens (bound, then released). */
function freePort(): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolvePromise(port));
    });
  });
}

describe('offline commands', () => {
  test('weft version prints the package version and node version', async () => {
    const r = await weft(['version']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, `weft ${VERSION} (node ${process.version})\n`);
  });

  test('weft schema prints valid JSON Schema for any spelling of a kind', async () => {
    for (const name of ['httproute', 'HTTPRoute', 'httproutes']) {
      const r = await weft(['schema', name]);
      assert.equal(r.code, 0, r.stderr);
      const schema = JSON.parse(r.stdout) as { title: string; $schema: string; properties: Record<string, unknown> };
      assert.equal(schema.title, 'HTTPRoute');
      assert.match(schema.$schema, /json-schema\.org/);
      assert.ok(schema.properties.spec);
    }
  });

  test('an unknown kind is one clear error line', async () => {
    for (const args of [['schema', 'frobs'], ['get', 'frobs'], ['delete', 'frobs', 'x']]) {
      const r = await weft(args);
      assertCleanFailure(r);
      assert.match(r.stderr, /^error: unknown kind "frobs" \(known: .*services.*\)$/m);
    }
  });

  test('weft validate reports each of three mistakes with its file#doc path, and exits 1', async () => {
    const file = `${FIX}/bad/three-mistakes.yaml`;
    const r = await weft(['validate', file]);
    assertCleanFailure(r);
    assert.deepEqual(lines(r.stderr), [
      `${file}#1 spec.ports[0].port: must be ≥ 1`,
      `${file}#3 spec.rules[0].backendRefs[0]: refers to Service/default/nowhere, which does not exist`,
      `${file}#4 spec.portz: unknown field`,
      'error: 3 errors in 1 file',
    ]);
    assert.equal(r.stdout, '');
  });

  test('weft validate resolves references across the given files, or skips them with --no-ref-check', async () => {
    const ok = await weft(['validate', `${FIX}/mesh`]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, '5 objects valid\n');

    const alone = await weft(['validate', `${FIX}/mesh/routes.yaml`]);
    assertCleanFailure(alone);
    assert.match(alone.stderr, /^test\/fixtures\/cli\/mesh\/routes\.yaml#1 spec\.parentRefs\[0\]: refers to Service\/default\/catalog, which does not exist$/m);

    const noRefs = await weft(['validate', '--no-ref-check', `${FIX}/mesh/routes.yaml`]);
    assert.equal(noRefs.code, 0, noRefs.stderr);
    assert.equal(noRefs.stdout, '2 objects valid\n');
  });

  test('weft validate reads stdin and names it "-"', async () => {
    const r = await weft(['validate', '-'], { input: 'apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 99999}]}\n' });
    assertCleanFailure(r);
    assert.match(r.stderr, /^-#1 spec\.ports\[0\]\.port: must be ≤ 65535$/m);
  });

  test('a missing file is one clear error', async () => {
    const r = await weft(['validate', 'no/such/file.yaml']);
    assertCleanFailure(r);
    assert.match(r.stderr, /^error: cannot read no\/such\/file\.yaml: no such file or directory$/m);
  });

  test('usage errors exit 2', async () => {
    for (const args of [['get'], ['get', 'svc', '-o', 'xml'], ['frobnicate'], ['apply']]) {
      const r = await weft(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^error: /m);
    }
  });

  test('an unreachable control plane says where it looked and what to run', async () => {
    const server = `http://127.0.0.1:${await freePort()}`;
    const r = await weft(['--server', server, 'get', 'svc']);
    assertCleanFailure(r);
    assert.equal(r.stderr, `error: cannot reach the control plane at ${server} (is 'weft control' running?)\n`);
    // -v adds the cause, WEFT_SERVER is honoured.
    const v = await weft(['get', 'svc', '-v'], { env: { WEFT_SERVER: server } });
    assert.equal(v.code, 1);
    assert.match(v.stderr, new RegExp(`^error: cannot reach the control plane at ${server.replace(/\./g, '\\.')}`, 'm'));
    assert.match(v.stderr, /ECONNREFUSED/);
  });
});

describe('against a running control plane', () => {
  let dataDir: string;
  let cp: Control;
  /** Global options for reads (no token needed from loopback). */
  let read: string[];
  /** Global options for writes: the token from the data directory. */
  let write: string[];

  before(async () => {
    dataDir = join(tmp, 'data');
    cp = await startControl(dataDir);
    read = ['--server', cp.apiUrl];
    write = ['--server', cp.apiUrl, '--data-dir', dataDir];
  });

  after(async () => {
    if (cp) await killHard(cp.proc);
  });

  async function names(kind: string, extra: string[] = ['-A']): Promise<string[]> {
    const r = await weft([...read, 'get', kind, ...extra, '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { items: { metadata: { name: string; namespace?: string } }[] }).items.map((i) => `${i.metadata.namespace}/${i.metadata.name}`);
  }

  test('writes without a token fail with a clear message and change nothing', async () => {
    const r = await weft([...read, 'apply', '-f', `${FIX}/mesh/`]);
    assertCleanFailure(r);
    assert.match(r.stderr, /^error: this needs the admin token: pass --token, set WEFT_TOKEN, or name the data directory/m);
    const wrong = await weft([...read, '--token', 'not-the-token', 'apply', '-f', `${FIX}/mesh/`]);
    assertCleanFailure(wrong);
    assert.match(wrong.stderr, /refused the admin token from --token/);
    const missing = await weft([...read, '--data-dir', join(tmp, 'elsewhere'), 'delete', 'svc', 'catalog']);
    assertCleanFailure(missing);
    assert.match(missing.stderr, /admin token \(.*elsewhere\/admin-token does not exist\)/);
    assert.deepEqual(await names('svc'), []);
  });

  test('weft get of an empty kind says so on stderr', async () => {
    const r = await weft([...read, 'get', 'svc']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, 'No resources found in default namespace.\n');
  });

  test('weft apply -f DIR creates everything and reports kubectl style', async () => {
    const r = await weft([...write, 'apply', '-f', `${FIX}/mesh/`]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(lines(r.stdout).sort(), [
      'httproute/catalog-canary created',
      'httproute/reviews created',
      'service/catalog created',
      'service/catalog-v2 created',
      'service/reviews created',
    ]);
    // Again: nothing changes. The token may come from WEFT_TOKEN too.
    const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
    const again = await weft([...read, 'apply', '-f', `${FIX}/mesh/services.yaml`, '-f', `${FIX}/mesh/routes.yaml`], { env: { WEFT_TOKEN: token } });
    assert.equal(again.code, 0, again.stderr);
    assert.ok(lines(again.stdout).every((l) => l.endsWith(' unchanged')), again.stdout);
  });

  test('what weft get -o yaml prints applies back unchanged', async () => {
    const out = await weft([...read, 'get', 'all', '-A', '-o', 'yaml']);
    assert.equal(out.code, 0, out.stderr);
    const r = await weft([...write, 'apply', '-f', '-'], { input: out.stdout });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(lines(r.stdout).length, 5);
    assert.ok(lines(r.stdout).every((l) => l.endsWith(' unchanged')), r.stdout);
  });

  test('weft get httproutes -A -o yaml shows the routes as a List', async () => {
    const r = await weft([...read, 'get', 'httproutes', '-A', '-o', 'yaml']);
    assert.equal(r.code, 0, r.stderr);
    const list = parse(r.stdout) as { kind: string; items: { kind: string; apiVersion: string; metadata: { name: string; namespace: string } }[] };
    assert.equal(list.kind, 'List');
    assert.deepEqual(list.items.map((i) => `${i.metadata.namespace}/${i.metadata.name}`), ['default/catalog-canary', 'shop/reviews']);
    assert.ok(list.items.every((i) => i.kind === 'HTTPRoute' && i.apiVersion === 'gateway.networking.k8s.io/v1'));
  });

  test('weft get takes short, singular, plural and kind names; tables have the kind columns and AGE', async () => {
    const outputs: string[] = [];
    for (const k of ['svc', 'service', 'services', 'Service']) {
      const r = await weft([...read, 'get', k]);
      assert.equal(r.code, 0, r.stderr);
      outputs.push(r.stdout);
    }
    // AGE may tick between runs; everything else is the same whatever the spelling.
    const withoutAge = (t: string) => t.replace(/\S+$/gm, '');
    assert.ok(outputs.every((o) => withoutAge(o) === withoutAge(outputs[0]!)), outputs.join('\n---\n'));
    const table = lines(outputs[0]!);
    assert.match(table[0]!, /^NAME\s+PORTS\s+SELECTOR\s+AGE$/);
    assert.match(table[1]!, /^catalog\s+8080\/http\s+app=catalog\s+\d+s$/);
    assert.match(table[2]!, /^catalog-v2\s/);
    assert.equal(table.length, 3, 'only the default namespace');

    const all = lines((await weft([...read, 'get', 'svc', '-A'])).stdout);
    assert.match(all[0]!, /^NAMESPACE\s+NAME\s+PORTS/);
    assert.match(all[3]!, /^shop\s+reviews\s+9080\/http\s+<none>\s+\d+s$/);

    const hr = lines((await weft([...read, 'get', 'hr', '-n', 'shop'])).stdout);
    assert.match(hr[0]!, /^NAME\s+PARENTS\s+HOSTNAMES\s+RULES\s+BACKENDS\s+AGE$/);
    assert.match(hr[1]!, /^reviews\s/);
  });

  test('weft get NAME -o json prints the object; -l filters by label; -o name', async () => {
    const one = await weft([...read, 'get', 'svc', 'catalog', '-o', 'json']);
    assert.equal(one.code, 0, one.stderr);
    const obj = JSON.parse(one.stdout) as { kind: string; metadata: { name: string; creationTimestamp: string }; spec: { ports: { targetPort: number }[] } };
    assert.equal(obj.kind, 'Service');
    assert.equal(obj.metadata.name, 'catalog');
    assert.equal(obj.spec.ports[0]?.targetPort, 8080, 'defaults applied');

    const labelled = await weft([...read, 'get', 'services', '-l', 'app=catalog', '-o', 'name']);
    assert.equal(labelled.stdout, 'service/catalog\n');

    const missing = await weft([...read, 'get', 'svc', 'nope']);
    assertCleanFailure(missing);
    assert.match(missing.stderr, /not found/);
  });

  test('weft get all lists every kind', async () => {
    const r = await weft([...read, 'get', 'all', '-A', '-o', 'name']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(lines(r.stdout).sort(), ['httproute/catalog-canary', 'httproute/reviews', 'service/catalog', 'service/catalog-v2', 'service/reviews']);
  });

  test('weft describe shows metadata, kind columns and spec', async () => {
    const r = await weft([...read, 'describe', 'svc', 'catalog']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Name:\s+catalog$/m);
    assert.match(r.stdout, /^Namespace:\s+default$/m);
    assert.match(r.stdout, /^Labels:\s+app=catalog$/m);
    assert.match(r.stdout, /^Spec:\n {2}selector:/m);
  });

  test('weft apply of an invalid multi-doc file prints every error and stores nothing', async () => {
    const file = `${FIX}/bad/invalid-multi.yaml`;
    const before = await names('all');
    const r = await weft([...write, 'apply', '-f', file]);
    assertCleanFailure(r);
    assert.deepEqual(lines(r.stderr), [
      `${file}#2 spec.ports[0].port: must be ≤ 65535`,
      `${file}#3 spec.rules[0].backendRefs[0].weight: must be ≥ 0`,
      'error: 2 errors in 1 file',
    ]);
    assert.equal(r.stdout, '');
    assert.deepEqual(await names('all'), before, 'the valid document 1 was not stored either');
  });

  test('errors only the server finds (references to missing objects) still name the user\'s file', async () => {
    const file = `${FIX}/bad/dangling-route.yaml`;
    const r = await weft([...write, 'apply', '-f', `${FIX}/mesh/services.yaml`, '-f', file]);
    assertCleanFailure(r);
    assert.deepEqual(lines(r.stderr), [`${file}#1 items[1].spec.rules[0].backendRefs[0]: refers to Service/default/ghost, which does not exist`, 'error: 1 error in 1 file']);
    assert.deepEqual((await names('svc')).includes('default/front'), false);
  });

  test('weft apply -f - --dry-run reports and stores nothing', async () => {
    const yaml = 'apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: dry}\nspec: {ports: [{port: 80}]}\n';
    const r = await weft([...write, 'apply', '-f', '-', '--dry-run', '-n', 'shop'], { input: yaml });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'service/dry created (dry run)\n');
    assert.ok(!(await names('svc')).includes('shop/dry'));
  });

  test('state survives a SIGKILL of the control plane', async () => {
    await killHard(cp.proc);
    const down = await weft([...read, 'get', 'svc']);
    assertCleanFailure(down);
    assert.match(down.stderr, /cannot reach the control plane/);

    cp = await startControl(dataDir);
    read = ['--server', cp.apiUrl];
    write = ['--server', cp.apiUrl, '--data-dir', dataDir];
    const r = await weft([...read, 'get', 'httproutes', '-A', '-o', 'yaml']);
    assert.equal(r.code, 0, r.stderr);
    const list = parse(r.stdout) as { items: { metadata: { name: string } }[] };
    assert.deepEqual(list.items.map((i) => i.metadata.name), ['catalog-canary', 'reviews']);
  });

  test('a second control plane on a taken address fails with one line', async () => {
    const port = new URL(cp.apiUrl).port;
    const proc = spawn(process.execPath, [CLI, 'control', '--data-dir', join(tmp, 'data2'), '--api-addr', `127.0.0.1:${port}`, '--xds-addr', '127.0.0.1:0', '--log-level', 'silent'], { cwd: ROOT, env: childEnv() });
    started.add(proc);
    let stderr = '';
    proc.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    let stdout = '';
    proc.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    const code = await new Promise<number | null>((r) => proc.on('close', (c) => r(c)));
    started.delete(proc);
    assertCleanFailure({ code, stdout, stderr });
    assert.match(stderr, new RegExp(`^error: cannot listen on 127\\.0\\.0\\.1:${port}`, 'm'));
  });

  test('weft delete by name, by file, and of what is gone', async () => {
    const r = await weft([...write, 'delete', 'httproute', 'catalog-canary']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'httproute "catalog-canary" deleted\n');
    assert.deepEqual(await names('httproutes'), ['shop/reviews']);

    const byFile = await weft([...write, 'delete', '-f', `${FIX}/mesh/routes.yaml`, '--ignore-not-found']);
    assert.equal(byFile.code, 0, byFile.stderr);
    assert.equal(byFile.stdout, 'httproute "reviews" deleted\n');
    assert.deepEqual(await names('hr'), []);

    const gone = await weft([...write, 'delete', 'hr', 'catalog-canary']);
    assertCleanFailure(gone);
    assert.match(gone.stderr, /not found/);

    const viaFile = await weft([...write, 'delete', '-f', `${FIX}/mesh/services.yaml`]);
    assert.equal(viaFile.code, 0, viaFile.stderr);
    assert.equal(lines(viaFile.stdout).length, 3);
    assert.deepEqual(await names('all'), []);
  });

  test('SIGTERM stops the control plane cleanly (exit 0)', async () => {
    const code = await new Promise<number | null>((r) => {
      cp.proc.once('exit', (c) => r(c));
      cp.proc.kill('SIGTERM');
    });
    assert.equal(code, 0, cp.stderr());
  });
});

describe('the examples directory', { skip: existsSync(join(ROOT, 'examples')) ? false : 'examples/ does not exist yet' }, () => {
  /** `namespace/name` of every HTTPRoute the example files hold, read independently of the CLI. */
  function exampleRoutes(): string[] {
    const out: string[] = [];
    for (const f of readdirSync(join(ROOT, 'examples')).filter((n) => /\.(ya?ml)$/.test(n))) {
      for (const doc of parseAllDocuments(readFileSync(join(ROOT, 'examples', f), 'utf8'))) {
        const v = doc.toJS() as { kind?: string; metadata?: { name: string; namespace?: string } } | null;
        if (v?.kind === 'HTTPRoute' && v.metadata) out.push(`${v.metadata.namespace ?? 'default'}/${v.metadata.name}`);
      }
    }
    return out.sort();
  }

  async function routesOn(apiUrl: string): Promise<string[]> {
    const r = await weft(['--server', apiUrl, 'get', 'httproutes', '-A', '-o', 'yaml']);
    assert.equal(r.code, 0, r.stderr);
    return (parse(r.stdout) as { items: { metadata: { name: string; namespace: string } }[] }).items.map((i) => `${i.metadata.namespace}/${i.metadata.name}`).sort();
  }

  test('weft validate examples/, weft apply -f examples/, and the routes survive a SIGKILL', async () => {
    const v = await weft(['validate', 'examples/']);
    assert.equal(v.code, 0, v.stderr);
    const dataDir = join(tmp, 'examples-data');
    let cp = await startControl(dataDir);
    try {
      const r = await weft(['--server', cp.apiUrl, '--data-dir', dataDir, 'apply', '-f', 'examples/']);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(lines(r.stdout).length > 0 && lines(r.stdout).every((l) => / created$/.test(l)), r.stdout);
      const again = await weft(['--server', cp.apiUrl, '--data-dir', dataDir, 'apply', '-f', 'examples/']);
      assert.ok(lines(again.stdout).every((l) => / unchanged$/.test(l)), again.stdout);

      const want = exampleRoutes();
      assert.ok(want.length > 0, 'the examples hold HTTPRoutes');
      assert.deepEqual(await routesOn(cp.apiUrl), want);

      await killHard(cp.proc);
      cp = await startControl(dataDir);
      assert.deepEqual(await routesOn(cp.apiUrl), want);
    } finally {
      await killHard(cp.proc);
    }
  });
});
