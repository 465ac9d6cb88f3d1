import type { Command } from 'commander';
import { validateDocuments } from '../../api/validate.js';
import { WeftError } from '../../lib/errors.js';
import { loadDocuments } from '../files.js';
import { plural } from '../output.js';
import { errorSummary } from '../report.js';
import { sortByInput } from './apply.js';

interface ValidateOptions {
  refCheck: boolean;
  recursive?: boolean;
}

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description('check files offline (no control plane): schema, semantics and references among the given files')
    .argument('<file...>', 'YAML/JSON files, directories of them, or - for stdin')
    .option('--no-ref-check', 'do not require references to resolve within the given files')
    .option('-R, --recursive', 'also read subdirectories of directories')
    .action(async (paths: string[], opts: ValidateOptions) => {
      const { files, docs, errors: parseErrors } = await loadDocuments(paths, { recursive: opts.recursive });
      // Offline: nothing exists outside the input, so every reference must resolve inside it.
      const { resources, errors } = validateDocuments(docs, opts.refCheck ? { exists: () => false } : {});
      const all = sortByInput([...parseErrors, ...errors], files.map((f) => f.source));
      if (all.length > 0) throw new WeftError('WEFT_ERR_INVALID', errorSummary(all), { details: all });
      process.stdout.write(`${plural(resources.length, 'object')} valid\n`);
    });
}
