import type { Resource } from '../../api/types.js';
import { WeftError } from '../../lib/errors.js';

type Requirement =
  | { op: '='; key: string; value: string }
  | { op: '!='; key: string; value: string }
  | { op: 'exists'; key: string }
  | { op: '!exists'; key: string };

export type LabelSelector = (labels: Readonly<Record<string, string>> | undefined) => boolean;

/**
 * Parses the equality-based subset of Kubernetes label selectors:
 * `k=v`, `k==v`, `k!=v`, `k` (has the label), `!k` (lacks it), joined by commas.
 * An empty selector matches everything.
 */
export function parseLabelSelector(text: string): LabelSelector {
  const reqs: Requirement[] = [];
  for (const raw of text.split(',')) {
    const part = raw.trim();
    if (part === '') continue;
    const m = /^(!)?\s*([^=!\s]+)\s*(?:(==|=|!=)\s*([^=!\s,]*))?$/.exec(part);
    if (!m || (m[1] !== undefined && m[3] !== undefined)) throw new WeftError('WEFT_ERR_BAD_REQUEST', `labelSelector: cannot read "${part}" (use k=v, k!=v, k or !k, joined by commas)`);
    const key = m[2]!;
    if (m[3] === undefined) reqs.push({ op: m[1] ? '!exists' : 'exists', key });
    else reqs.push({ op: m[3] === '!=' ? '!=' : '=', key, value: m[4] ?? '' });
  }
  return (labels) => reqs.every((r) => {
    const v = labels?.[r.key];
    switch (r.op) {
      case '=': return v === r.value;
      case '!=': return v !== r.value;
      case 'exists': return v !== undefined;
      case '!exists': return v === undefined;
    }
  });
}

export function matches(selector: LabelSelector, r: Resource): boolean {
  return selector(r.metadata.labels);
}
