/** PEM blocks of `text` with the given label (all labels when omitted), each ending in a newline. */
export function splitPem(text: string, label?: string): string[] {
  const re = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;
  const out: string[] = [];
  for (const m of text.matchAll(re)) {
    if (label === undefined || m[1] === label) out.push(`${m[0]}\n`);
  }
  return out;
}

/** Normalise PEM blocks into one text: one block after another, each ending in a newline. */
export function joinPem(blocks: readonly string[]): string {
  return blocks.map((b) => (b.endsWith('\n') ? b : `${b}\n`)).join('');
}
