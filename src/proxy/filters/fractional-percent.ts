/** envoy.type.v3.FractionalPercent and RuntimeFractionalPercent (runtime keys are ignored: Weft has no runtime). */
import { enumStr, fail, num, obj, optObj } from '../config/proto-values.js';

const DENOMINATORS = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 } as const;

/** As a probability in [0, 1]. */
export function fractionalPercent(v: unknown, path: string, dflt: number): number {
  const f = optObj(v, path);
  if (f === undefined) return dflt;
  const n = num(f.numerator, `${path}.numerator`, 0);
  const d = DENOMINATORS[enumStr(f.denominator, `${path}.denominator`, ['HUNDRED', 'TEN_THOUSAND', 'MILLION'], 'HUNDRED')];
  if (n < 0) fail(`${path}.numerator`, 'must be ≥ 0');
  return Math.min(1, n / d);
}

export function runtimeFractionalPercent(v: unknown, path: string, dflt: number): number {
  const r = optObj(v, path);
  if (r === undefined) return dflt;
  return fractionalPercent(obj(r, path).default_value, `${path}.default_value`, dflt);
}

/** Envoy draws an integer in [0, denominator) and compares; a probability draw is the same. */
export function hit(p: number, random: () => number): boolean {
  return p >= 1 || (p > 0 && random() < p);
}
