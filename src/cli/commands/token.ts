import { InvalidArgumentError, type Command } from 'commander';
import { parseDuration } from '../../lib/duration.js';
import { clientFor } from '../context.js';

interface TokenCreateOptions {
  namespace: string;
  serviceAccount: string;
  ttl: string;
  output: 'token' | 'json';
}

interface TokenResponse {
  token: string;
  namespace?: string;
  serviceAccount?: string;
  spiffeId?: string;
  expiresAt?: string;
}

function duration(v: string): string {
  if (parseDuration(v) === undefined) throw new InvalidArgumentError(`want a duration such as 24h, 30m or 90s, got "${v}"`);
  return v;
}

function outputFormat(v: string): TokenCreateOptions['output'] {
  if (v !== 'token' && v !== 'json') throw new InvalidArgumentError(`want token or json, got "${v}"`);
  return v;
}

export function registerToken(program: Command): void {
  const token = program.command('token').description('join tokens: what a proxy presents to get its workload certificate');
  token
    .command('create')
    .description('create a join token for one namespace and service account (needs the admin token)')
    .requiredOption('--namespace <ns>', 'namespace the proxy will act in')
    .requiredOption('--service-account <sa>', 'service account the proxy will act as')
    .option('--ttl <duration>', 'how long the token stays valid (1s to 365d)', duration, '24h')
    .option('-o, --output <format>', 'token (the token alone) or json (with its SPIFFE ID and expiry)', outputFormat, 'token')
    .addHelpText('after', `
The token is a bearer credential until it expires: whoever holds it can get a
certificate for spiffe://<trust domain>/ns/NS/sa/SA. Pass it to the proxy:
  weft proxy --token "$(weft token create --namespace shop --service-account web)" --api URL ...`)
    .action(async (opts: TokenCreateOptions, cmd: Command) => {
      const res = await clientFor(cmd).json<TokenResponse>('POST', '/ca/tokens', {
        body: JSON.stringify({ namespace: opts.namespace, serviceAccount: opts.serviceAccount, ttl: opts.ttl }),
        contentType: 'application/json',
      });
      process.stdout.write(opts.output === 'json' ? `${JSON.stringify(res, null, 2)}\n` : `${res.token}\n`);
    });
}
