// A small YAML emitter for JSON values (the object view): block style, strings
// quoted whenever plain style could read back as something else. No DOM, no
// dependencies: it runs in the browser as an ES module.

const PLAIN = /^[A-Za-z0-9_./][A-Za-z0-9_./@: -]*$/;
const RESERVED = /^(?:true|false|yes|no|on|off|y|n|null|~|[-+]?(?:\.inf|\.nan)|[-+]?[0-9][0-9_.:eExXoObB+-]*)$/i;

function scalar(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  const s = String(v);
  if (s !== '' && PLAIN.test(s) && !RESERVED.test(s) && !s.endsWith(' ') && !s.endsWith(':') && !s.includes(': ') && !s.includes(' #')) return s;
  return JSON.stringify(s);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isEmpty = (v: unknown): boolean => (Array.isArray(v) && v.length === 0) || (isObject(v) && Object.keys(v).length === 0);

function key(k: string): string {
  return PLAIN.test(k) && !RESERVED.test(k) && !k.includes(': ') ? k : JSON.stringify(k);
}

function lines(v: unknown, indent: string, out: string[]): void {
  if (Array.isArray(v)) {
    for (const item of v) {
      if ((isObject(item) || Array.isArray(item)) && !isEmpty(item)) {
        const sub: string[] = [];
        lines(item, `${indent}  `, sub);
        // The first line goes after the dash.
        out.push(`${indent}- ${sub[0]!.slice(indent.length + 2)}`, ...sub.slice(1));
      } else out.push(`${indent}- ${isEmpty(item) ? (Array.isArray(item) ? '[]' : '{}') : scalar(item)}`);
    }
    return;
  }
  if (isObject(v)) {
    for (const [k, val] of Object.entries(v)) {
      if (val === undefined) continue;
      if ((isObject(val) || Array.isArray(val)) && !isEmpty(val)) {
        out.push(`${indent}${key(k)}:`);
        lines(val, Array.isArray(val) ? indent : `${indent}  `, out);
      } else out.push(`${indent}${key(k)}: ${isEmpty(val) ? (Array.isArray(val) ? '[]' : '{}') : scalar(val)}`);
    }
    return;
  }
  out.push(`${indent}${scalar(v)}`);
}

/** YAML text for a JSON value; ends with a newline. */
export function toYaml(v: unknown): string {
  if (isEmpty(v)) return Array.isArray(v) ? '[]\n' : '{}\n';
  const out: string[] = [];
  lines(v, '', out);
  return `${out.join('\n')}\n`;
}
