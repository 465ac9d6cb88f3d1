import { Option, type Command } from 'commander';
import type { KindDescriptor } from '../../api/descriptor.js';
import { kinds } from '../../api/registry.js';
import { DEFAULT_NAMESPACE, type Resource } from '../../api/types.js';
import { WeftError } from '../../lib/errors.js';
import type { ApiClient } from '../client.js';
import { clientFor } from '../context.js';
import { formatObjects, listOf, OUTPUT_FORMATS, tableOf, toJson, toYaml, type OutputFormat } from '../output.js';

interface GetOptions {
  namespace?: string;
  allNamespaces?: boolean;
  output: OutputFormat;
  selector?: string;
}

export function namespaceOption(): Option {
  return new Option('-n, --namespace <ns>', `namespace (default: ${DEFAULT_NAMESPACE})`);
}

export function registerGet(program: Command): void {
  program
    .command('get')
    .description('list objects of a kind, or show one (KIND may be "all")')
    .argument('<kind>', 'kind name: singular, plural or short (service, services, svc), or "all"')
    .argument('[name]', 'one object by name')
    .addOption(namespaceOption())
    .option('-A, --all-namespaces', 'list across every namespace')
    .addOption(new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS).default('table'))
    .option('-l, --selector <k=v,...>', 'only objects with these labels')
    .action(async (kindName: string, name: string | undefined, opts: GetOptions, cmd: Command) => {
      const client = clientFor(cmd);
      const namespace = opts.allNamespaces ? undefined : (opts.namespace ?? DEFAULT_NAMESPACE);
      if (kindName.toLowerCase() === 'all') {
        if (name !== undefined) throw new WeftError('WEFT_ERR_USAGE', '"weft get all" takes no name');
        await getAll(client, namespace, opts);
        return;
      }
      const d = kinds.mustLookup(kindName);
      if (name !== undefined) {
        if (opts.selector !== undefined) throw new WeftError('WEFT_ERR_USAGE', 'a name and --selector cannot be used together');
        const r = await client.get(d, namespace ?? DEFAULT_NAMESPACE, name);
        process.stdout.write(formatObjects(d, [r], opts.output, { single: true, allNamespaces: opts.allNamespaces }));
        return;
      }
      const list = await client.list(d, { namespace, labelSelector: opts.selector });
      const items = sortObjects(list.items);
      if (items.length === 0 && opts.output === 'table') {
        process.stderr.write(noneFound(d, namespace));
        return;
      }
      process.stdout.write(formatObjects(d, items, opts.output, { allNamespaces: opts.allNamespaces }));
    });
}

/** Every kind, one table each (as `kubectl get all`); one List for yaml and json. */
async function getAll(client: ApiClient, namespace: string | undefined, opts: GetOptions): Promise<void> {
  const lists = await Promise.all(kinds.kinds.map(async (d) => ({ d, items: sortObjects((await client.list(d, { namespace, labelSelector: opts.selector })).items) })));
  const found = lists.filter((l) => l.items.length > 0);
  switch (opts.output) {
    case 'yaml':
      process.stdout.write(toYaml(listOf(found.flatMap((l) => l.items))));
      return;
    case 'json':
      process.stdout.write(toJson(listOf(found.flatMap((l) => l.items))));
      return;
    default:
      if (found.length === 0) {
        process.stderr.write(noneFound(undefined, namespace));
        return;
      }
      process.stdout.write(
        found
          .map((l) => (opts.output === 'name' ? formatObjects(l.d, l.items, 'name') : tableOf(l.d, l.items, { allNamespaces: opts.allNamespaces, qualifyNames: true })))
          .join(opts.output === 'name' ? '' : '\n'),
      );
  }
}

export function sortObjects(items: readonly Resource[]): Resource[] {
  return [...items].sort((a, b) => cmp(a.metadata.namespace ?? '', b.metadata.namespace ?? '') || cmp(a.metadata.name, b.metadata.name));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function noneFound(d: KindDescriptor | undefined, namespace: string | undefined): string {
  if (namespace === undefined || (d !== undefined && !d.namespaced)) return 'No resources found.\n';
  return `No resources found in ${namespace} namespace.\n`;
}
