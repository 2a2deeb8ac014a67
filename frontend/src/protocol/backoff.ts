export interface BackoffOptions {
  /** First delay, in milliseconds. */
  baseMs?: number;
  /** Ceiling for any delay, in milliseconds. */
  maxMs?: number;
  /** Source of randomness in [0, 1); injectable so tests are deterministic. */
  random?: () => number;
}

/**
 * Exponential backoff with "equal jitter": the delay for attempt n lies in
 * [cap/2, cap) where cap = min(maxMs, baseMs * 2^n). Half of it is fixed so a reconnect never
 * fires instantly in a loop; the random half spreads a crowd of clients that lost the same
 * server, so they do not all come back in the same millisecond.
 */
export class Backoff {
  readonly baseMs: number;
  readonly maxMs: number;
  private readonly random: () => number;
  private attempts = 0;

  constructor({ baseMs = 500, maxMs = 15_000, random = Math.random }: BackoffOptions = {}) {
    if (baseMs <= 0 || maxMs < baseMs) throw new RangeError("need 0 < baseMs <= maxMs");
    this.baseMs = baseMs;
    this.maxMs = maxMs;
    this.random = random;
  }

  /** How many delays were handed out since the last reset. */
  get attempt(): number {
    return this.attempts;
  }

  /** The delay before the next attempt; each call counts as one more attempt. */
  next(): number {
    // 2^30 already exceeds any sensible cap; clamping the exponent avoids Infinity.
    const cap = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(this.attempts, 30));
    this.attempts += 1;
    const half = cap / 2;
    return Math.round(half + this.random() * half);
  }

  /** Call after a connection proved healthy. */
  reset(): void {
    this.attempts = 0;
  }
}
