/**
 * Child process of proxy-protos.ts: parses and prunes the proxy's protos, writes them
 * to stdout as protobufjs JSON and exits, taking the parser's garbage with it.
 * A failure exits non-zero; the parent then parses in-process and reports the error.
 */
import { loadProxyRoot, PROXY_PROTO_FILES } from './proxy-proto-parse.js';

process.stdout.write(JSON.stringify(loadProxyRoot(PROXY_PROTO_FILES).toJSON()));
