/**
 * Applies compiled header mutations to a flat raw header list
 * (`[name, value, name, value, ...]`, as node:http's rawHeaders and writeHead take).
 */
import type { HeaderMutation } from '../config/types.js';

function indexesOf(headers: string[], name: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < headers.length; i += 2) if (headers[i]!.toLowerCase() === name) out.push(i);
  return out;
}

function removeAll(headers: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.toLowerCase() !== name) out.push(headers[i]!, headers[i + 1]!);
  }
  return out;
}

export function applyMutation(headers: string[], m: HeaderMutation): string[] {
  let h = headers;
  for (const name of m.remove) h = removeAll(h, name);
  for (const a of m.add) {
    if (a.value === '' && !a.keepEmptyValue) continue;
    const present = indexesOf(h, a.name).length > 0;
    switch (a.action) {
      case 'APPEND_IF_EXISTS_OR_ADD': h.push(a.name, a.value); break;
      case 'ADD_IF_ABSENT': if (!present) h.push(a.name, a.value); break;
      case 'OVERWRITE_IF_EXISTS_OR_ADD': h = removeAll(h, a.name); h.push(a.name, a.value); break;
      case 'OVERWRITE_IF_EXISTS': if (present) { h = removeAll(h, a.name); h.push(a.name, a.value); } break;
    }
  }
  return h;
}

/** Applies mutations in order, skipping empty ones (the common case costs nothing). */
export function applyMutations(headers: string[], ms: readonly (HeaderMutation | undefined)[]): string[] {
  let h = headers;
  for (const m of ms) if (m !== undefined && (m.add.length > 0 || m.remove.length > 0)) h = applyMutation(h, m);
  return h;
}
