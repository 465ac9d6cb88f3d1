import { stringify } from 'yaml';
import type { KindDescriptor } from '../api/descriptor.js';
import type { Resource } from '../api/types.js';
import { WeftError } from '../lib/errors.js';

export const OUTPUT_FORMATS = ['table', 'yaml', 'json', 'name'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/**
 * kubectl's age: `45s`, `3m12s` (under 10 minutes), `42m`, `2h5m` (under 8
 * hours), `20h`, `3d4h` (under 8 days), `120d`, `2y30d` (under 8 years), `9y`.
 */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return withRest(minutes, 'm', seconds % 60, 's');
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return withRest(hours, 'h', minutes % 60, 'm');
  if (hours < 48) return `${hours}h`;
  const days = Math.floor(hours / 24);
  if (hours < 24 * 8) return withRest(days, 'd', hours % 24, 'h');
  if (hours < 24 * 365 * 2) return `${days}d`;
  const years = Math.floor(days / 365);
  if (hours < 24 * 365 * 8) return withRest(years, 'y', days % 365, 'd');
  return `${years}y`;
}

function withRest(n: number, unit: string, rest: number, restUnit: string): string {
  return rest === 0 ? `${n}${unit}` : `${n}${unit}${rest}${restUnit}`;
}

/** AGE of an object from its creationTimestamp; `<unknown>` when absent or unparseable. */
export function ageOf(r: Resource, now: number): string {
  const ts = r.metadata.creationTimestamp;
  const t = ts === undefined ? NaN : Date.parse(ts);
  return Number.isNaN(t) ? '<unknown>' : humanDuration(now - t);
}

/**
 * Columns padded to their widest cell, three spaces apart, as kubectl prints
 * them. The last column is not padded, so lines carry no trailing blanks.
 */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    headers
      .map((_, i) => {
        const cell = cells[i] ?? '';
        return i === headers.length - 1 ? cell : cell.padEnd(widths[i]!);
      })
      .join('   ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

export interface TableOptions {
  /** Adds the NAMESPACE column (`-A`). */
  allNamespaces?: boolean;
  /** Prefix names with `<singular>/` (as `weft get all` does). */
  qualifyNames?: boolean;
  now?: number;
}

/** NAMESPACE (with -A), NAME, the kind's own columns, AGE. */
export function tableOf(d: KindDescriptor, items: readonly Resource[], opts: TableOptions = {}): string {
  const now = opts.now ?? Date.now();
  const showNs = (opts.allNamespaces ?? false) && d.namespaced;
  const headers = [...(showNs ? ['NAMESPACE'] : []), 'NAME', ...d.columns.map((c) => c.header), 'AGE'];
  const rows = items.map((r) => [
    ...(showNs ? [r.metadata.namespace ?? ''] : []),
    opts.qualifyNames ? `${d.singular}/${r.metadata.name}` : r.metadata.name,
    ...d.columns.map((c) => cell(() => c.value(r))),
    ageOf(r, now),
  ]);
  return renderTable(headers, rows);
}

/** A column must never break a listing: an object that no longer validates may lack fields. */
function cell(f: () => string): string {
  try {
    const v = f();
    return v === '' ? '<none>' : v;
  } catch {
    return '<invalid>';
  }
}

/** What `-o yaml|json` prints for many objects: kubectl's `kind: List`. */
export function listOf(items: readonly Resource[]): { apiVersion: string; kind: 'List'; items: readonly Resource[] } {
  return { apiVersion: 'v1', kind: 'List', items };
}

export function toYaml(value: unknown): string {
  return stringify(value, { lineWidth: 0, aliasDuplicateObjects: false });
}

export function toJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

export function nameOf(d: KindDescriptor, r: Resource): string {
  return `${d.singular}/${r.metadata.name}`;
}

/**
 * Objects in one format. `single` prints one object as itself (`weft get svc x
 * -o yaml`) rather than as a one-item List.
 */
export function formatObjects(d: KindDescriptor, items: readonly Resource[], format: OutputFormat, opts: TableOptions & { single?: boolean } = {}): string {
  switch (format) {
    case 'yaml':
      return toYaml(opts.single && items.length === 1 ? items[0] : listOf(items));
    case 'json':
      return toJson(opts.single && items.length === 1 ? items[0] : listOf(items));
    case 'name':
      return items.map((r) => `${nameOf(d, r)}\n`).join('');
    case 'table':
      return tableOf(d, items, opts);
  }
}

export function parseOutputFormat(s: string): OutputFormat {
  if ((OUTPUT_FORMATS as readonly string[]).includes(s)) return s as OutputFormat;
  throw new WeftError('WEFT_ERR_USAGE', `unknown output format "${s}" (use ${OUTPUT_FORMATS.join(', ')})`);
}

/** `2 errors`, `1 file`. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** Text indented by `spaces`, blank lines kept empty. */
export function indent(text: string, spaces = 2): string {
  const pad = ' '.repeat(spaces);
  return text
    .replace(/\n$/, '')
    .split('\n')
    .map((l) => (l === '' ? l : pad + l))
    .join('\n');
}
