/** Exponential backoff with full jitter (AWS's "full jitter": uniform in [0, cap]). */
export interface Backoff {
  next(): number;
  reset(): void;
}

export function createBackoff(initialMs = 500, maxMs = 30_000, random: () => number = Math.random): Backoff {
  let attempt = 0;
  return {
    next: () => {
      const cap = Math.min(maxMs, initialMs * 2 ** attempt);
      attempt = Math.min(attempt + 1, 30);
      return Math.max(10, Math.floor(random() * cap));
    },
    reset: () => { attempt = 0; },
  };
}
