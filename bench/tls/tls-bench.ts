/**
 * `npm run bench:tls` (≤ 60 s): what mTLS costs in Weft.
 *  1. CA: X.509-SVIDs signed per second (src/control/ca, in process; keys and CSRs made
 *     beforehand, so this is the CA's signing alone).
 *  2. New mTLS handshakes per second through a proxy's inbound listener (node:tls
 *     clients presenting an SVID; each handshake is followed by one request so the
 *     proxy's acceptance of the client certificate is part of what is counted).
 *  3. Requests per second, proxy A → proxy B → app, plaintext vs mTLS between the
 *     proxies, same processes, same run (wrk, keep-alive, HTTP/1.1 into A; A→B is
 *     HTTP/2 over mTLS when ALPN picks h2, or HTTP/1.1 over mTLS with ALPN http/1.1;
 *     HTTP/1.1 keep-alive in plaintext).
 * Prints a table and the ratios; bench/RESULTS.md keeps the figures.
 */
import { createServer } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { connect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { createCertificateAuthority } from '../../src/control/ca/ca.js';
import { createCsr } from '../../src/lib/identity/csr.js';
import { exportPrivateKeyPem, generateKeyPair } from '../../src/lib/identity/keys.js';
import { HOST, freePort, installCleanup, startProc, stopAll } from '../proxy/common.js';
import { runWrk, wrkPath, type WrkResult } from '../proxy/wrk.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const TD = 'bench.local';
const CA_N = Number(process.env.WEFT_BENCH_CA_N ?? 300);
const HANDSHAKE_S = Number(process.env.WEFT_BENCH_HANDSHAKE_S ?? 5);
const WRK_S = Number(process.env.WEFT_BENCH_WRK_S ?? 7);
const WRK = { threads: 2, connections: 32, durationS: WRK_S };
const TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3';
const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

interface Pem { certPem: string; keyPem: string; spiffeId: string }

const int = (n: number): string => Math.round(n).toLocaleString('en-US');

function hcmChain(name: string, cluster: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    ...extra,
    filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: {
      '@type': HCM, stat_prefix: name,
      route_config: { name, virtual_hosts: [{ name, domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster } }] }] },
      http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
    } }],
  };
}

function cluster(name: string, port: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name, type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: HOST, port_value: port } } } }] }] }, ...extra };
}

function listenerAt(name: string, port: number, chains: Record<string, unknown>[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name, address: { socket_address: { address: HOST, port_value: port } }, filter_chains: chains, ...extra };
}

function tlsContext(kind: 'Downstream' | 'Upstream', own: Pem, caPem: string, sans: string[] = [], alpn = ['h2', 'http/1.1']): Record<string, unknown> {
  const common = {
    tls_certificates: [{ certificate_chain: { inline_string: own.certPem }, private_key: { inline_string: own.keyPem } }],
    validation_context: { trusted_ca: { inline_string: caPem }, ...(sans.length > 0 ? { match_typed_subject_alt_names: sans.map((s) => ({ san_type: 'URI', matcher: { exact: s } })) } : {}) },
    alpn_protocols: alpn,
  };
  return { name: 'envoy.transport_sockets.tls', typed_config: { '@type': `${TLS}.${kind}TlsContext`, common_tls_context: common, ...(kind === 'Downstream' ? { require_client_certificate: true } : {}) } };
}

async function caBench(dir: string): Promise<{ perSecond: number; n: number; ms: number; ca: Awaited<ReturnType<typeof createCertificateAuthority>> }> {
  const ca = await createCertificateAuthority(join(dir, 'ca'), { trustDomain: TD });
  const csrs: string[] = [];
  for (let i = 0; i < CA_N; i++) csrs.push(await createCsr(await generateKeyPair(), `spiffe://${TD}/ns/bench/sa/w${i}`));
  const t0 = performance.now();
  for (let i = 0; i < CA_N; i++) await ca.issueFor({ namespace: 'bench', serviceAccount: `w${i}` }, csrs[i]!);
  const ms = performance.now() - t0;
  return { perSecond: (CA_N * 1000) / ms, n: CA_N, ms, ca };
}

async function issue(ca: Awaited<ReturnType<typeof createCertificateAuthority>>, sa: string): Promise<Pem> {
  const keys = await generateKeyPair();
  const spiffeId = `spiffe://${TD}/ns/bench/sa/${sa}`;
  const svid = await ca.issueFor({ namespace: 'bench', serviceAccount: sa }, await createCsr(keys, spiffeId));
  return { certPem: svid.chainPem, keyPem: await exportPrivateKeyPem(keys.privateKey), spiffeId };
}

/** Closed loop of `conc` clients: mTLS handshake, one request, close; for `seconds`. */
async function handshakeBench(port: number, client: Pem, caPem: string, conc: number, seconds: number): Promise<{ perSecond: number; done: number; errors: number }> {
  const end = Date.now() + seconds * 1000;
  let done = 0;
  let errors = 0;
  const one = (): Promise<void> => new Promise((resolve) => {
    const s = connect({ host: HOST, port, cert: client.certPem, key: client.keyPem, ca: caPem, checkServerIdentity: () => undefined, ALPNProtocols: ['http/1.1'] }, () => {
      s.write('GET / HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n');
    });
    let got = '';
    s.on('data', (d: Buffer) => { got += d.toString('latin1'); });
    s.on('close', () => { if (got.startsWith('HTTP/1.1 200')) done++; else errors++; resolve(); });
    s.on('error', () => {});
  });
  const t0 = Date.now();
  await Promise.all(Array.from({ length: conc }, async () => { while (Date.now() < end) await one(); }));
  return { perSecond: (done * 1000) / (Date.now() - t0), done, errors };
}

async function main(): Promise<void> {
  installCleanup();
  const dir = await mkdtemp(join(tmpdir(), 'weft-bench-tls-'));
  console.log(`weft TLS benchmark — node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}); temp dir ${dir}\n`);
  try {
    // 1. CA
    const caR = await caBench(dir);
    console.log(`CA: ${caR.n} SVIDs signed in ${int(caR.ms)} ms → ${int(caR.perSecond)} certificates/s`);

    // Processes: app (this process), proxy B (inbound: mTLS chain + plaintext chain), proxy A (two outbound listeners).
    const bundle = caR.ca.bundlePem();
    const server = await issue(caR.ca, 'b');
    const client = await issue(caR.ca, 'a');
    const app = createServer((_req, res) => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('x'.repeat(1024)); });
    await new Promise<void>((r) => app.listen(0, HOST, () => r()));
    const appPort = (app.address() as { port: number }).port;
    const [bPort, aPlain, aMtls, aMtlsH1, aPlainH2] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
    const bBoot = { static_resources: {
      listeners: [listenerAt('inbound', bPort, [
        hcmChain('inbound|tls', 'app', { filter_chain_match: { transport_protocol: 'tls' }, transport_socket: tlsContext('Downstream', server, bundle) }),
        hcmChain('inbound|plaintext', 'app', { filter_chain_match: { transport_protocol: 'raw_buffer' } }),
      ], { listener_filters: [{ name: 'envoy.filters.listener.tls_inspector' }] })],
      clusters: [cluster('app', appPort)],
    } };
    const aBoot = { static_resources: {
      listeners: [listenerAt('out-plain', aPlain, [hcmChain('out-plain', 'b-plain')]), listenerAt('out-mtls', aMtls, [hcmChain('out-mtls', 'b-mtls')]), listenerAt('out-mtls-h1', aMtlsH1, [hcmChain('out-mtls-h1', 'b-mtls-h1')]), listenerAt('out-plain-h2', aPlainH2, [hcmChain('out-plain-h2', 'b-plain-h2')])],
      clusters: [
        cluster('b-plain', bPort),
        cluster('b-plain-h2', bPort, { http2_protocol_options: {} }),
        cluster('b-mtls', bPort, { transport_socket: tlsContext('Upstream', client, bundle, [server.spiffeId]) }),
        cluster('b-mtls-h1', bPort, { transport_socket: tlsContext('Upstream', client, bundle, [server.spiffeId], ['http/1.1']) }),
      ],
    } };
    await writeFile(join(dir, 'b.json'), JSON.stringify(bBoot));
    await writeFile(join(dir, 'a.json'), JSON.stringify(aBoot));
    const start = async (name: string, file: string): Promise<void> => {
      const p = startProc(name, process.execPath, [join(HERE, 'proxy-child.js'), '--bootstrap', file]);
      const deadline = Date.now() + 15_000;
      while (!p.output().includes('ready')) {
        if (Date.now() > deadline || p.cp.exitCode !== null) throw new Error(`${name} did not start:\n${p.output()}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await start('proxy-b', join(dir, 'b.json'));
    await start('proxy-a', join(dir, 'a.json'));

    // 2. Handshakes into B's inbound.
    const hs = await handshakeBench(bPort, client, bundle, 16, HANDSHAKE_S);
    console.log(`mTLS handshakes into proxy B's inbound (16 node:tls clients, + 1 request each, ${HANDSHAKE_S} s): ${int(hs.perSecond)}/s (${hs.done} done, ${hs.errors} errors)`);

    // 3. Plaintext vs mTLS between the proxies.
    if (wrkPath() === undefined) {
      console.log('SKIP requests/s: wrk is not installed (apt-get install wrk)');
    } else {
      await runWrk(aPlain, { ...WRK, durationS: 1 });
      await runWrk(aMtls, { ...WRK, durationS: 1 });
      await runWrk(aMtlsH1, { ...WRK, durationS: 1 });
      await runWrk(aPlainH2, { ...WRK, durationS: 1 });
      const plain: WrkResult = await runWrk(aPlain, WRK);
      const mtls: WrkResult = await runWrk(aMtls, WRK);
      const mtlsH1: WrkResult = await runWrk(aMtlsH1, WRK);
      const plainH2: WrkResult = await runWrk(aPlainH2, WRK);
      const row = (label: string, r: WrkResult): string => `| ${label} | ${int(r.rps)} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${r.non2xx + r.socketErrors} |`;
      console.log(`\nwrk -t${WRK.threads} -c${WRK.connections} -d${WRK.durationS}s → proxy A → proxy B → app (1 KiB):\n`);
      console.log('| A → B | req/s | p50 ms | p99 ms | errors |\n|---|---:|---:|---:|---:|');
      console.log(row('plaintext (HTTP/1.1)', plain));
      console.log(row('mTLS (ALPN h2: one multiplexed session)', mtls));
      console.log(row('mTLS (ALPN http/1.1: keep-alive pool)', mtlsH1));
      console.log(row('plaintext h2c (http2_protocol_options; isolates HTTP/2 from TLS)', plainH2));
      const ratio = (r: WrkResult): string => `req/s ${(r.rps / plain.rps).toFixed(2)}, p50 ${(r.p50Ms / plain.p50Ms).toFixed(2)}, p99 ${(r.p99Ms / plain.p99Ms).toFixed(2)}`;
      console.log(`\nratios vs plaintext: mTLS h2 ${ratio(mtls)}; mTLS HTTP/1.1 ${ratio(mtlsH1)}; plaintext h2c ${ratio(plainH2)}`);
    }
    console.log(`handshake cost: one new mTLS connection ≈ ${(1000 / hs.perSecond * 16).toFixed(2)} ms of wall time per client at 16 concurrent; CA: ${(caR.ms / caR.n).toFixed(2)} ms per certificate`);
    app.close();
    app.closeAllConnections();
  } finally {
    await stopAll();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
