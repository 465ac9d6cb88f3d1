import { parseAllDocuments } from 'yaml';
import type { FieldError } from '../lib/errors.js';

/** One YAML document (or one item of a `kind: List`) with where it came from. */
export interface SourceDocument {
  source: string;
  /** 1-based document index within the source. */
  document: number;
  /** Path prefix when the object is an item of a List (`items[2]`), else ''. */
  pathPrefix: string;
  value: unknown;
}

export interface ParseResult {
  docs: SourceDocument[];
  errors: FieldError[];
}

/**
 * Splits a YAML/JSON stream into documents. Empty documents (`---` alone) are
 * skipped but still counted, so indexes match what an editor shows.
 */
export function parseDocuments(text: string, source: string): ParseResult {
  const docs: SourceDocument[] = [];
  const errors: FieldError[] = [];
  const parsed = parseAllDocuments(text, { prettyErrors: false, uniqueKeys: true });
  const list = Array.isArray(parsed) ? parsed : [parsed];
  list.forEach((doc, i) => {
    const document = i + 1;
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const at = e.linePos?.[0];
        const where = at ? `line ${at.line}, column ${at.col}: ` : '';
        errors.push({ source, document, path: '', message: `invalid YAML: ${where}${e.message.split('\n')[0]}` });
      }
      return;
    }
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) return;
    if (isObject(value) && value.kind === 'List' && Array.isArray(value.items)) {
      value.items.forEach((item: unknown, j: number) => docs.push({ source, document, pathPrefix: `items[${j}]`, value: item }));
      return;
    }
    docs.push({ source, document, pathPrefix: '', value });
  });
  return { docs, errors };
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
