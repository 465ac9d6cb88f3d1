import type { Command } from 'commander';
import type { KindDescriptor } from '../../api/descriptor.js';
import { isObject } from '../../api/parse.js';
import { kinds } from '../../api/registry.js';
import { DEFAULT_NAMESPACE } from '../../api/types.js';
import { formatFieldError, isWeftError, WeftError, type ErrorCode, type FieldError } from '../../lib/errors.js';
import type { ApiClient } from '../client.js';
import { clientFor } from '../context.js';
import { loadDocuments } from '../files.js';
import { plural } from '../output.js';
import { errorSummary } from '../report.js';
import { collect } from './apply.js';
import { namespaceOption } from './get.js';

interface DeleteOptions {
  filename?: string[];
  recursive?: boolean;
  namespace?: string;
  ignoreNotFound?: boolean;
  dryRun?: boolean;
}

interface Target {
  d: KindDescriptor;
  namespace: string;
  name: string;
}

export function registerDelete(program: Command): void {
  program
    .command('delete')
    .description('delete objects by kind and name, or those named in files (-f)')
    .argument('[kind]', 'kind name: singular, plural or short')
    .argument('[names...]', 'object names')
    .option('-f, --filename <file|dir|->', 'delete the objects these files describe (repeatable)', collect)
    .option('-R, --recursive', 'also read subdirectories of directories given with -f')
    .addOption(namespaceOption())
    .option('--ignore-not-found', 'do not fail for objects that do not exist')
    .option('--dry-run', 'report what would be deleted, delete nothing')
    .action(async (kindName: string | undefined, names: string[], opts: DeleteOptions, cmd: Command) => {
      let targets: Target[];
      if (opts.filename !== undefined) {
        if (kindName !== undefined) throw new WeftError('WEFT_ERR_USAGE', 'use either KIND NAME... or -f FILE, not both');
        targets = await targetsFromFiles(opts.filename, opts);
      } else {
        if (kindName === undefined || names.length === 0) throw new WeftError('WEFT_ERR_USAGE', 'say what to delete: weft delete KIND NAME... or weft delete -f FILE');
        const d = kinds.mustLookup(kindName);
        targets = names.map((name) => ({ d, namespace: opts.namespace ?? DEFAULT_NAMESPACE, name }));
      }
      await deleteAll(clientFor(cmd), targets, opts);
    });
}

/**
 * Objects named by files: only kind, name and namespace are read, so a file
 * that no longer validates (an older schema) can still be deleted with.
 */
async function targetsFromFiles(paths: readonly string[], opts: DeleteOptions): Promise<Target[]> {
  const { docs, errors } = await loadDocuments(paths, { recursive: opts.recursive });
  const targets: Target[] = [];
  const problems: FieldError[] = [...errors];
  for (const doc of docs) {
    const at = (path: string, message: string) => problems.push({ source: doc.source, document: doc.document, path: doc.pathPrefix ? `${doc.pathPrefix}.${path}` : path, message });
    const v = doc.value;
    if (!isObject(v)) {
      at('', 'a resource must be a mapping with apiVersion, kind, metadata and spec');
      continue;
    }
    const d = typeof v.kind === 'string' ? kinds.byKindName(v.kind) : undefined;
    if (!d) {
      at('kind', typeof v.kind === 'string' ? `unknown kind "${v.kind}"` : 'is required');
      continue;
    }
    const meta = isObject(v.metadata) ? v.metadata : {};
    if (typeof meta.name !== 'string' || meta.name === '') {
      at('metadata.name', 'is required');
      continue;
    }
    const namespace = typeof meta.namespace === 'string' ? meta.namespace : (opts.namespace ?? DEFAULT_NAMESPACE);
    targets.push({ d, namespace, name: meta.name });
  }
  if (problems.length > 0) throw new WeftError('WEFT_ERR_INVALID', errorSummary(problems), { details: problems });
  if (targets.length === 0) throw new WeftError('WEFT_ERR_INVALID', `no objects in ${paths.join(', ')}`);
  return targets;
}

/** One DELETE per object; keeps going past failures and fails at the end if any did. */
async function deleteAll(client: ApiClient, targets: readonly Target[], opts: DeleteOptions): Promise<void> {
  let failed = 0;
  let lastCode: ErrorCode = 'WEFT_ERR_INTERNAL';
  const dry = opts.dryRun ? ' (dry run)' : '';
  for (const t of targets) {
    try {
      await client.delete(t.d, t.namespace, t.name, { dryRun: opts.dryRun });
      process.stdout.write(`${t.d.singular} "${t.name}" deleted${dry}\n`);
    } catch (e) {
      if (isWeftError(e, 'WEFT_ERR_NOT_FOUND') && opts.ignoreNotFound) continue;
      // Nothing can go right for the rest when the server is down or refuses the token.
      if (targets.length === 1 || !isWeftError(e) || ['WEFT_ERR_UNAVAILABLE', 'WEFT_ERR_UNAUTHORIZED', 'WEFT_ERR_FORBIDDEN', 'WEFT_ERR_USAGE'].includes(e.code)) throw e;
      failed++;
      lastCode = e.code;
      for (const d of e.details) process.stderr.write(`${formatFieldError(d)}\n`);
      process.stderr.write(`error: ${e.message}\n`);
    }
  }
  if (failed > 0) throw new WeftError(lastCode, `${plural(failed, 'object')} of ${targets.length} could not be deleted`);
}
