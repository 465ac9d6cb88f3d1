import { inspect } from 'node:util';
import { formatFieldError, isWeftError } from '../lib/errors.js';
import { plural } from './output.js';

/** Exit codes: 1 for failures, 2 for command-line misuse (as commander and most CLIs do). */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/**
 * Turns any failure into what a person reads: one `error: ...` line, preceded
 * by one line per field error; the stack and causes only with -v.
 */
export function reportError(err: unknown, opts: { verbose: boolean; write?: (s: string) => void }): number {
  const write = opts.write ?? ((s: string) => void process.stderr.write(s));
  if (isWeftError(err)) {
    for (const d of err.details) write(`${formatFieldError(d)}\n`);
    write(`error: ${err.message}\n`);
  } else if (err instanceof Error) {
    write(`error: ${err.message}\n`);
  } else {
    write(`error: ${String(err)}\n`);
  }
  if (opts.verbose && err instanceof Error) write(`${inspect(err, { depth: 6 })}\n`);
  return isWeftError(err, 'WEFT_ERR_USAGE') ? EXIT_USAGE : EXIT_FAILURE;
}

/** `3 errors in 2 files` for errors that name their sources. */
export function errorSummary(errors: readonly { source?: string }[]): string {
  const files = new Set(errors.map((e) => e.source ?? '')).size;
  return `${plural(errors.length, 'error')} in ${plural(files, 'file')}`;
}
