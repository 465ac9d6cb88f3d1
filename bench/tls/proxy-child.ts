/**
 * A Weft proxy from a bootstrap file (--bootstrap FILE), for the TLS benchmark: one
 * process per proxy so that proxy A, proxy B and the load generator do not share an
 * event loop. Prints `ready` once its listeners are bound.
 */
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { args, watchdog } from '../proxy/children/watchdog.js';

const a = args();
const held: { proxy?: Proxy } = {};
watchdog(async () => { await held.proxy?.close(); });
held.proxy = await startProxy({ bootstrap: a.bootstrap!, adminAddr: '127.0.0.1:0', logLevel: process.env.WEFT_BENCH_LOG ?? 'silent', drainMs: 0 });
process.stdout.write('ready\n');
