/** Runs an HCM's HTTP filters in order on a routed request; synchronous verdicts stay synchronous. */
import type { CompiledRoute } from '../config/types.js';
import type { ChainEntry, FilterRequest, FilterVerdict, LocalReplySpec } from './types.js';

export function runFilterChain(chain: readonly ChainEntry[], route: CompiledRoute, r: FilterRequest, done: (reply: LocalReplySpec | undefined) => void): void {
  const step = (i: number): void => {
    for (; i < chain.length; i++) {
      const e = chain[i]!;
      let v: FilterVerdict | Promise<FilterVerdict>;
      try {
        v = e.filter.decodeHeaders(r, route.perFilter.get(e.name));
      } catch {
        // A filter bug must not take the proxy down: answer as Envoy does for a filter error.
        return done({ flag: 'DPE', status: 500 });
      }
      if (v instanceof Promise) {
        const next = i + 1;
        v.then((x) => (x === undefined ? step(next) : done(x)), () => done({ flag: 'DPE', status: 500 }));
        return;
      }
      if (v !== undefined) return done(v);
    }
    done(undefined);
  };
  step(0);
}
