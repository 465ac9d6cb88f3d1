/**
 * Durations as the Gateway API writes them (GEP-2257): `1h`, `500ms`, `1m30s`.
 * Units h, m, s, ms; at least one part; at most 5 digits per part.
 */
const PART = /(\d{1,5})(ms|h|m|s)/gy;
export const DURATION_PATTERN = '^([0-9]{1,5}(h|m|s|ms)){1,4}$';

export function parseDuration(text: string): number | undefined {
  if (text === '' || !new RegExp(DURATION_PATTERN).test(text)) return undefined;
  PART.lastIndex = 0;
  let ms = 0;
  let m: RegExpExecArray | null;
  while ((m = PART.exec(text)) !== null) {
    const n = Number(m[1]);
    switch (m[2]) {
      case 'h': ms += n * 3_600_000; break;
      case 'm': ms += n * 60_000; break;
      case 's': ms += n * 1000; break;
      case 'ms': ms += n; break;
    }
  }
  return ms;
}

export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const parts: string[] = [];
  const h = Math.floor(ms / 3_600_000); ms -= h * 3_600_000;
  const m = Math.floor(ms / 60_000); ms -= m * 60_000;
  const s = Math.floor(ms / 1000); ms -= s * 1000;
  if (h) parts.push(`${h}h`);
  if (m) parts.push(`${m}m`);
  if (s) parts.push(`${s}s`);
  if (ms) parts.push(`${ms}ms`);
  return parts.join('');
}
