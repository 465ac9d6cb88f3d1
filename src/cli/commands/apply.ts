import type { Command } from 'commander';
import type { SourceDocument } from '../../api/parse.js';
import { kinds } from '../../api/registry.js';
import { joinPath, validateDocuments } from '../../api/validate.js';
import { isWeftError, WeftError, type FieldError } from '../../lib/errors.js';
import type { ApiClient, ApplyResult } from '../client.js';
import { clientFor } from '../context.js';
import { loadDocuments } from '../files.js';
import { errorSummary } from '../report.js';

interface ApplyOptions {
  filename: string[];
  recursive?: boolean;
  dryRun?: boolean;
  namespace?: string;
}

export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function registerApply(program: Command): void {
  program
    .command('apply')
    .description('create or update objects from files, directories or stdin (all or nothing)')
    .requiredOption('-f, --filename <file|dir|->', 'a YAML/JSON file, a directory of them, or - for stdin (repeatable)', collect)
    .option('-R, --recursive', 'also read subdirectories of directories given with -f')
    .option('-n, --namespace <ns>', 'namespace for objects that name none (default: default)')
    .option('--dry-run', 'validate on the server and report what would change, store nothing')
    .action(async (opts: ApplyOptions, cmd: Command) => {
      const docs = await loadAndValidate(opts.filename, { recursive: opts.recursive, namespace: opts.namespace });
      const result = await sendApply(clientFor(cmd), docs, { namespace: opts.namespace, dryRun: opts.dryRun });
      process.stdout.write(formatApplyResult(result));
    });
}

/**
 * Reads and validates every input locally (schema and semantics, no reference
 * checks: those need the store), so bad input fails with every error before
 * any network call.
 */
export async function loadAndValidate(paths: readonly string[], opts: { recursive?: boolean; namespace?: string }): Promise<SourceDocument[]> {
  const { files, docs, errors: parseErrors } = await loadDocuments(paths, { recursive: opts.recursive });
  const { errors } = validateDocuments(docs, { defaultNamespace: opts.namespace });
  const all = sortByInput([...parseErrors, ...errors], files.map((f) => f.source));
  if (all.length > 0) throw new WeftError('WEFT_ERR_INVALID', errorSummary(all), { details: all });
  if (docs.length === 0) throw new WeftError('WEFT_ERR_INVALID', `no objects in ${paths.join(', ')}`);
  return docs;
}

/**
 * Sends all documents in one POST /apply, as one JSON `kind: List`, so the
 * server validates them together (references across files resolve) and writes
 * them all or nothing. The server names item j `request#1 items[j]...`; errors
 * are mapped back to the user's file, document and path before they are shown.
 */
export async function sendApply(client: ApiClient, docs: readonly SourceDocument[], opts: { namespace?: string; dryRun?: boolean }): Promise<ApplyResult> {
  const body = { apiVersion: 'v1', kind: 'List', items: docs.map((d) => d.value) };
  try {
    return await client.apply(body, opts);
  } catch (e) {
    if (isWeftError(e) && e.details.length > 0) {
      throw new WeftError(e.code, e.code === 'WEFT_ERR_INVALID' ? errorSummary(e.details.map((d) => toUserSource(d, docs))) : e.message, {
        details: e.details.map((d) => toUserSource(d, docs)),
        cause: e,
      });
    }
    throw e;
  }
}

/** `request#1 items[3].spec.x` → `routes.yaml#2 spec.x` (or the item path inside a List). */
export function toUserSource(e: FieldError, docs: readonly SourceDocument[]): FieldError {
  const m = /^items\[(\d+)\](.*)$/.exec(e.path);
  const doc = m ? docs[Number(m[1])] : undefined;
  if (!m || !doc) return e;
  const rest = m[2]!.replace(/^\./, '');
  return { source: doc.source, document: doc.document, path: joinPath(doc.pathPrefix, rest), message: e.message };
}

/** Errors in input order (file as read, then document); stable within a document. */
export function sortByInput(errors: FieldError[], sources: readonly string[]): FieldError[] {
  const rank = new Map(sources.map((s, i) => [s, i]));
  return errors.sort((a, b) => (rank.get(a.source ?? '') ?? -1) - (rank.get(b.source ?? '') ?? -1) || (a.document ?? 0) - (b.document ?? 0));
}

export function formatApplyResult(r: ApplyResult): string {
  const dry = r.dryRun ? ' (dry run)' : '';
  return r.items.map((i) => `${kinds.byKindName(i.kind)?.singular ?? i.kind.toLowerCase()}/${i.name} ${i.action}${dry}\n`).join('');
}
