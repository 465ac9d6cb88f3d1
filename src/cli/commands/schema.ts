import type { Command } from 'commander';
import { kinds } from '../../api/registry.js';
import { jsonSchemaOf } from '../../api/resource-schema.js';
import { toJson } from '../output.js';

export function registerSchema(program: Command): void {
  program
    .command('schema')
    .description("print a kind's JSON Schema (for editors and CI)")
    .argument('<kind>', 'kind name: singular, plural or short (httproute, httproutes, svc)')
    .action((kind: string) => {
      process.stdout.write(toJson(jsonSchemaOf(kinds.mustLookup(kind))));
    });
}
