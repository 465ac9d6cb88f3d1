/**
 * Health the proxy itself decides about (active health checks and outlier ejection),
 * per host key, kept across config rebuilds of a cluster. `version` bumps on every
 * change so load balancers rebuild their host set lazily, on the next pick.
 */
export class HostHealth {
  private readonly failedHc = new Set<string>();
  private readonly ejected = new Set<string>();
  version = 0;

  isAvailable(key: string): boolean {
    return !this.failedHc.has(key) && !this.ejected.has(key);
  }

  isEjected(key: string): boolean { return this.ejected.has(key); }
  failedActiveHc(key: string): boolean { return this.failedHc.has(key); }
  get ejectedCount(): number { return this.ejected.size; }

  setFailedHc(key: string, failed: boolean): void {
    if (failed === this.failedHc.has(key)) return;
    if (failed) this.failedHc.add(key); else this.failedHc.delete(key);
    this.version++;
  }

  setEjected(key: string, ejected: boolean): void {
    if (ejected === this.ejected.has(key)) return;
    if (ejected) this.ejected.add(key); else this.ejected.delete(key);
    this.version++;
  }

  /** Forgets hosts EDS no longer lists. */
  retain(keys: ReadonlySet<string>): void {
    for (const s of [this.failedHc, this.ejected]) {
      for (const k of s) if (!keys.has(k)) { s.delete(k); this.version++; }
    }
  }
}
