import { Option, type Command } from 'commander';
import { codeForHttpStatus, WeftError, type ErrorCode } from '../../lib/errors.js';
import { TOKEN_HELP } from '../client.js';
import { globalOptions, serverOf, tokenOf } from '../context.js';
import type { TapEvent } from '../../control/telemetry/hub.js';

/** One event of GET /apis/telemetry/v1/tap, as the control plane writes it. */
export type { TapEvent };

const FORMATS = ['default', 'wide', 'json'] as const;
type Format = (typeof FORMATS)[number];

const peer = (p: { name: string; namespace: string }): string => (p.namespace === '' ? p.name : `${p.name}.${p.namespace}`);

/** One line per request, as `linkerd viz tap` prints them (shorter). */
export function tapLine(e: TapEvent, format: Format): string {
  if (format === 'json') return JSON.stringify(e);
  const base = `${e.time} ${e.direction === 'inbound' ? 'in ' : 'out'} ${peer(e.source)} -> ${peer(e.destination)} ${e.method} ${e.authority}${e.path} ${e.status === 0 ? '-' : e.status}${e.flags === '' ? '' : ` ${e.flags}`} ${e.durationMs.toFixed(1)}ms`;
  if (format === 'default') return base;
  return `${base} proxy=${e.proxy} route=${e.route ?? '-'} id=${e.requestId}${e.traceId === undefined ? '' : ` trace=${e.traceId}`}`;
}

/** SERVICE, `service/NAME`, `proxy/ID`, or a node id (it has `~`). */
export function tapTarget(t: string): { service: string } | { proxy: string } {
  if (t.startsWith('proxy/')) return { proxy: t.slice(6) };
  if (t.startsWith('service/') || t.startsWith('svc/')) return { service: t.slice(t.indexOf('/') + 1) };
  if (t.includes('~')) return { proxy: t };
  return { service: t };
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new WeftError('WEFT_ERR_USAGE', `want a positive integer, got "${v}"`);
  return n;
}

interface TapOptions { namespace?: string; path?: string; method?: string; authority?: string; max?: number; rate?: number; output: Format }

export function registerTap(program: Command): void {
  program
    .command('tap')
    .description('print live requests through the proxies of a Service (and its callers\' outbound side) or one proxy')
    .argument('<target>', 'SERVICE (or service/NAME), or proxy/NODE_ID (a node id with "~" is taken as a proxy)')
    .addOption(new Option('-n, --namespace <ns>', 'namespace of the Service').default('default'))
    .option('--path <prefix>', 'only requests whose path starts with this')
    .option('--method <method>', 'only requests with this method')
    .option('--authority <host>', 'only requests with this authority (Host)')
    .option('--max <n>', 'stop after n requests', positiveInt)
    .option('--rate <n>', 'events per second each proxy may send (default 100, at most 1000)', positiveInt)
    .addOption(new Option('-o, --output <format>', 'output format').choices(FORMATS).default('default'))
    .addHelpText('after', `
Runs until Ctrl-C or --max. Proxies send at most --rate events per second each; events they or this
connection could not keep up with are dropped (never slowing requests down) and reported as "dropped N".
Stopping (Ctrl-C, or closing the connection) stops the tap on every proxy.`)
    .action(async (target: string, opts: TapOptions, cmd: Command) => {
      const t = tapTarget(target);
      const g = globalOptions(cmd);
      const server = serverOf(g);
      const token = tokenOf(g);
      const url = new URL(`${server}/apis/telemetry/v1/tap`);
      if ('service' in t) {
        url.searchParams.set('service', t.service);
        url.searchParams.set('namespace', opts.namespace ?? 'default');
      } else url.searchParams.set('proxy', t.proxy);
      if (opts.path !== undefined) url.searchParams.set('path', opts.path);
      if (opts.method !== undefined) url.searchParams.set('method', opts.method);
      if (opts.authority !== undefined) url.searchParams.set('authority', opts.authority);
      if (opts.max !== undefined) url.searchParams.set('limit', String(opts.max));
      if (opts.rate !== undefined) url.searchParams.set('rate', String(opts.rate));
      const abort = new AbortController();
      const onSigint = (): void => abort.abort();
      process.once('SIGINT', onSigint);
      process.once('SIGTERM', onSigint);
      const headers: Record<string, string> = { accept: 'application/x-ndjson' };
      if (token.token !== undefined) headers.authorization = `Bearer ${token.token}`;
      let printed = 0;
      try {
        let res: Response;
        try {
          res = await fetch(url, { headers, signal: abort.signal });
        } catch (e) {
          if (abort.signal.aborted) return;
          throw new WeftError('WEFT_ERR_UNAVAILABLE', `cannot reach the control plane at ${server} (is 'weft control' running?)`, { cause: e });
        }
        if (!res.ok) throw await statusError(res);
        const what = 'service' in t ? `service ${t.service}.${opts.namespace ?? 'default'}` : `proxy ${t.proxy}`;
        process.stderr.write(`tapping ${what} on ${res.headers.get('x-weft-tap-proxies') ?? '?'} proxies (Ctrl-C to stop)\n`);
        const decoder = new TextDecoder();
        let buf = '';
        try {
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            buf += decoder.decode(chunk, { stream: true });
            let nl: number;
            while ((nl = buf.indexOf('\n')) !== -1) {
              const line = buf.slice(0, nl).trim();
              buf = buf.slice(nl + 1);
              if (line === '') continue;
              const v = JSON.parse(line) as TapEvent | { dropped: number };
              if ('dropped' in v) {
                process.stderr.write(`dropped ${v.dropped} events (rate limit or a slow reader)\n`);
                continue;
              }
              process.stdout.write(`${tapLine(v, opts.output)}\n`);
              printed++;
              if (opts.max !== undefined && printed >= opts.max) {
                abort.abort();
                return;
              }
            }
          }
        } catch (e) {
          if (!abort.signal.aborted) throw new WeftError('WEFT_ERR_UNAVAILABLE', `the tap stream from ${server} broke off`, { cause: e });
        }
      } finally {
        process.off('SIGINT', onSigint);
        process.off('SIGTERM', onSigint);
      }
    });
}

async function statusError(res: Response): Promise<WeftError> {
  const text = await res.text().catch(() => '');
  if (res.status === 401) return new WeftError('WEFT_ERR_UNAUTHORIZED', `this needs the admin token: ${TOKEN_HELP}`);
  let reason: ErrorCode = codeForHttpStatus(res.status);
  let message = `the control plane answered ${res.status}`;
  try {
    const b = JSON.parse(text) as { reason?: ErrorCode; message?: string };
    if (typeof b.message === 'string') message = b.message;
    if (typeof b.reason === 'string') reason = b.reason;
  } catch { /* not a Status body */ }
  return new WeftError(reason, message);
}
