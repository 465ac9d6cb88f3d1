/**
 * A latency histogram with fixed logarithmic buckets, shared by the proxy (which fills
 * one per traffic key) and the control plane (which merges them over proxies and
 * time). Fixed bounds are what make histograms mergeable by adding counts, which
 * percentiles computed per proxy are not.
 *
 * Bucket i holds values in (upper(i-1), upper(i)] with upper(i) = 0.1 ms · 2^(i/4):
 * four buckets per doubling, so a percentile read from it is within ±9% of the truth
 * (half a bucket), from 0.1 ms to about 2 minutes; the last bucket takes the rest.
 */
export const BASE_MS = 0.1;
export const BUCKETS_PER_DOUBLING = 4;
/** 0.1 ms · 2^(81/4) ≈ 124 s; index 82 is the overflow bucket. */
export const BUCKET_COUNT = 83;

export function bucketUpperMs(i: number): number {
  return i >= BUCKET_COUNT - 1 ? Infinity : BASE_MS * 2 ** (i / BUCKETS_PER_DOUBLING);
}

export function bucketIndex(ms: number): number {
  if (!(ms > BASE_MS)) return 0; // also NaN and negatives
  const i = Math.ceil(BUCKETS_PER_DOUBLING * Math.log2(ms / BASE_MS) - 1e-9);
  return Math.min(i, BUCKET_COUNT - 1);
}

/** The sparse form sent on the wire: parallel arrays of bucket index and count. */
export interface SparseHistogram {
  readonly buckets: readonly number[];
  readonly counts: readonly number[];
}

export class Histogram {
  readonly counts: Float64Array = new Float64Array(BUCKET_COUNT);
  total = 0;

  record(ms: number): void {
    this.counts[bucketIndex(ms)]!++;
    this.total++;
  }

  merge(other: Histogram): this {
    for (let i = 0; i < BUCKET_COUNT; i++) this.counts[i]! += other.counts[i]!;
    this.total += other.total;
    return this;
  }

  mergeSparse(s: SparseHistogram): this {
    const n = Math.min(s.buckets.length, s.counts.length);
    for (let k = 0; k < n; k++) {
      const i = s.buckets[k]!;
      const c = s.counts[k]!;
      // Bounds and counts come from the network: ignore what cannot be ours.
      if (!Number.isInteger(i) || i < 0 || i >= BUCKET_COUNT || !(c > 0)) continue;
      this.counts[i]! += c;
      this.total += c;
    }
    return this;
  }

  toSparse(): SparseHistogram {
    const buckets: number[] = [];
    const counts: number[] = [];
    for (let i = 0; i < BUCKET_COUNT; i++) {
      if (this.counts[i]! > 0) {
        buckets.push(i);
        counts.push(this.counts[i]!);
      }
    }
    return { buckets, counts };
  }

  /**
   * The q-quantile (0 < q ≤ 1) in ms, interpolated linearly inside its bucket (as
   * Prometheus' histogram_quantile does); undefined when empty. The overflow bucket
   * answers with its lower bound.
   */
  quantile(q: number): number | undefined {
    if (this.total === 0) return undefined;
    const rank = Math.max(0, Math.min(1, q)) * this.total;
    let seen = 0;
    for (let i = 0; i < BUCKET_COUNT; i++) {
      const c = this.counts[i]!;
      if (c === 0) continue;
      if (seen + c >= rank) {
        const lower = i === 0 ? 0 : bucketUpperMs(i - 1);
        const upper = bucketUpperMs(i);
        if (upper === Infinity) return lower;
        return lower + (upper - lower) * ((rank - seen) / c);
      }
      seen += c;
    }
    return bucketUpperMs(BUCKET_COUNT - 2);
  }
}
