import type { Command } from 'commander';
import type { KindDescriptor } from '../../api/descriptor.js';
import { kinds } from '../../api/registry.js';
import { DEFAULT_NAMESPACE, type Resource } from '../../api/types.js';
import type { ApiClient } from '../client.js';
import { clientFor } from '../context.js';
import { effectivePolicySection } from '../describe-policy.js';
import { ageOf, indent, toYaml } from '../output.js';
import { namespaceOption } from './get.js';

/**
 * A block `weft describe` adds after the object itself (effective policies,
 * connected proxies, ...). Returns the block's text, or undefined to add nothing.
 */
export interface DescribeSection {
  title: string;
  appliesTo(d: KindDescriptor): boolean;
  render(ctx: { kind: KindDescriptor; object: Resource; client: ApiClient }): Promise<string | undefined>;
}

const sections: DescribeSection[] = [];

/** For other parts of the CLI to plug in more about an object. */
export function addDescribeSection(s: DescribeSection): void {
  sections.push(s);
}

// Services: the effective BackendPolicy settings and which resource supplied each.
addDescribeSection(effectivePolicySection);

interface DescribeOptions {
  namespace?: string;
}

export function registerDescribe(program: Command): void {
  program
    .command('describe')
    .description('show one object in detail')
    .argument('<kind>', 'kind name: singular, plural or short')
    .argument('<name>', 'object name')
    .addOption(namespaceOption())
    .action(async (kindName: string, name: string, opts: DescribeOptions, cmd: Command) => {
      const d = kinds.mustLookup(kindName);
      const client = clientFor(cmd);
      const r = await client.get(d, opts.namespace ?? DEFAULT_NAMESPACE, name);
      let text = formatDescribe(d, r, Date.now());
      for (const s of sections.filter((x) => x.appliesTo(d))) {
        const block = await s.render({ kind: d, object: r, client });
        if (block !== undefined) text += `${s.title}:\n${indent(block)}\n`;
      }
      process.stdout.write(text);
    });
}

/** kubectl-describe style: aligned `Key:  value` lines, then spec and status as indented YAML. */
export function formatDescribe(d: KindDescriptor, r: Resource, now: number): string {
  const m = r.metadata;
  const created = m.creationTimestamp === undefined ? '<unknown>' : `${m.creationTimestamp} (${ageOf(r, now)} ago)`;
  const fields: [string, string][] = [
    ['Name', m.name],
    ...(d.namespaced ? [['Namespace', m.namespace ?? DEFAULT_NAMESPACE] as [string, string]] : []),
    ['Kind', d.kind],
    ['API Version', r.apiVersion],
    ['Labels', pairs(m.labels)],
    ['Annotations', pairs(m.annotations)],
    ['Created', created],
    ['Generation', m.generation === undefined ? '<unknown>' : String(m.generation)],
    ['Resource Version', m.resourceVersion ?? '<unknown>'],
  ];
  for (const c of d.columns) {
    let v: string;
    try {
      v = c.value(r) || '<none>';
    } catch {
      v = '<invalid>';
    }
    fields.push([titleCase(c.header), v]);
  }
  const width = Math.max(...fields.map(([k]) => k.length)) + 3;
  const continuation = ' '.repeat(width);
  let out = fields.map(([k, v]) => `${`${k}:`.padEnd(width)}${v.split('\n').join(`\n${continuation}`)}\n`).join('');
  out += `Spec:\n${indent(toYaml(r.spec ?? {}))}\n`;
  out += r.status === undefined || r.status === null ? 'Status:'.padEnd(width) + '<none>\n' : `Status:\n${indent(toYaml(r.status))}\n`;
  return out;
}

/** Labels and annotations one per line, as kubectl describe shows them. */
function pairs(m: Record<string, string> | undefined): string {
  const entries = Object.entries(m ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return entries.length === 0 ? '<none>' : entries.map(([k, v]) => `${k}=${v}`).join('\n');
}

function titleCase(header: string): string {
  return header
    .toLowerCase()
    .split(/[\s_]+/)
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join(' ');
}
