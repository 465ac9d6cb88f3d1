import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDocuments, type SourceDocument } from '../api/parse.js';
import { WeftError, type FieldError } from '../lib/errors.js';

/** One input read from disk or stdin; `source` is what error messages name. */
export interface InputFile {
  source: string;
  text: string;
}

export interface ReadOptions {
  /** Descend into subdirectories of a directory argument. */
  recursive?: boolean;
  /** Reads all of stdin (injected by tests). */
  readStdin?: () => Promise<string>;
}

const CONFIG_EXTENSIONS = ['.yaml', '.yml', '.json'];

/**
 * Reads `-f` arguments: a file (whatever its name), a directory (its *.yaml,
 * *.yml and *.json files in name order; subdirectories only with `recursive`),
 * or `-` for stdin (at most once). Files are named as the user typed them, so
 * errors point at `examples/routes.yaml`, not an absolute path.
 */
export async function readInputs(paths: readonly string[], opts: ReadOptions = {}): Promise<InputFile[]> {
  if (paths.length === 0) throw new WeftError('WEFT_ERR_USAGE', 'no input: pass -f FILE, -f DIR or -f -');
  const out: InputFile[] = [];
  let stdinUsed = false;
  for (const p of paths) {
    if (p === '-') {
      if (stdinUsed) throw new WeftError('WEFT_ERR_USAGE', '"-" (stdin) may be given only once');
      stdinUsed = true;
      out.push({ source: '-', text: await (opts.readStdin ?? readStdin)() });
      continue;
    }
    const st = await statOrThrow(p);
    if (st.isDirectory()) {
      const files = await listConfigFiles(p, opts.recursive ?? false);
      if (files.length === 0) {
        throw new WeftError('WEFT_ERR_NOT_FOUND', `${p}: no ${CONFIG_EXTENSIONS.map((e) => `*${e}`).join(', ')} files${opts.recursive ? '' : ' (use -R for subdirectories)'}`);
      }
      for (const f of files) out.push({ source: f, text: await readText(f) });
    } else {
      out.push({ source: p, text: await readText(p) });
    }
  }
  return out;
}

/** Config files of a directory, sorted by name; with `recursive`, subdirectories follow in name order. */
export async function listConfigFiles(dir: string, recursive: boolean): Promise<string[]> {
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const out: string[] = [];
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (recursive) out.push(...(await listConfigFiles(p, true)));
    } else if (CONFIG_EXTENSIONS.some((x) => e.name.toLowerCase().endsWith(x))) {
      out.push(p);
    }
  }
  return out;
}

export interface LoadedInputs {
  files: InputFile[];
  docs: SourceDocument[];
  /** Parse errors (YAML syntax), each with its file and document. */
  errors: FieldError[];
}

/** Reads and parses every input; documents keep their file and 1-based index. */
export async function loadDocuments(paths: readonly string[], opts: ReadOptions = {}): Promise<LoadedInputs> {
  const files = await readInputs(paths, opts);
  const docs: SourceDocument[] = [];
  const errors: FieldError[] = [];
  for (const f of files) {
    const r = parseDocuments(f.text, f.source);
    docs.push(...r.docs);
    errors.push(...r.errors);
  }
  return { files, docs, errors };
}

async function statOrThrow(p: string) {
  try {
    return await stat(p);
  } catch (e) {
    throw fileError(p, e);
  }
}

async function readText(p: string): Promise<string> {
  try {
    return await readFile(p, 'utf8');
  } catch (e) {
    throw fileError(p, e);
  }
}

function fileError(p: string, e: unknown): WeftError {
  const code = (e as NodeJS.ErrnoException).code;
  const why = code === 'ENOENT' ? 'no such file or directory' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (e as Error).message;
  return new WeftError('WEFT_ERR_NOT_FOUND', `cannot read ${p}: ${why}`, { cause: e });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}
