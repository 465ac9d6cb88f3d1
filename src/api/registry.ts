import type { KindDescriptor } from './descriptor.js';
import { WeftError } from '../lib/errors.js';
import { ALL_KINDS } from './kinds.js';

/**
 * Finds kinds by any name a user may type: `HTTPRoute`, `httproute`, `httproutes`,
 * a short name (`hr`), or `httproutes.gateway.networking.k8s.io`.
 */
export class KindRegistry {
  private readonly byName = new Map<string, KindDescriptor>();
  private readonly byKind = new Map<string, KindDescriptor>();

  constructor(readonly kinds: readonly KindDescriptor[]) {
    for (const d of kinds) {
      this.byKind.set(d.kind, d);
      for (const n of [d.kind.toLowerCase(), d.plural, d.singular, ...d.shortNames]) {
        this.byName.set(n, d);
        this.byName.set(`${n}.${d.group}`, d);
      }
    }
  }

  /** By the exact `kind` field of a resource. */
  byKindName(kind: string): KindDescriptor | undefined {
    return this.byKind.get(kind);
  }

  /** By what a user typed on the command line. */
  lookup(name: string): KindDescriptor | undefined {
    return this.byName.get(name.toLowerCase());
  }

  mustLookup(name: string): KindDescriptor {
    const d = this.lookup(name);
    if (!d) {
      const known = this.kinds.map((k) => k.plural).join(', ');
      throw new WeftError('WEFT_ERR_UNKNOWN_KIND', `unknown kind "${name}" (known: ${known})`);
    }
    return d;
  }

  /** By the REST path segments `/apis/{group}/{version}/.../{plural}`. */
  byPath(group: string, version: string, plural: string): KindDescriptor | undefined {
    const d = this.byName.get(plural);
    if (!d || d.plural !== plural || d.group !== group || !d.versions.includes(version)) return undefined;
    return d;
  }
}

export const kinds = new KindRegistry(ALL_KINDS);
