import { describe, expect, it } from "vitest";
import { Backoff } from "./backoff";

describe("Backoff", () => {
  it("doubles the ceiling each attempt and keeps every delay within [cap/2, cap]", () => {
    const low = new Backoff({ baseMs: 100, maxMs: 10_000, random: () => 0 });
    const high = new Backoff({ baseMs: 100, maxMs: 10_000, random: () => 0.999999 });
    expect([1, 2, 3, 4].map(() => low.next())).toEqual([50, 100, 200, 400]);
    expect([1, 2, 3, 4].map(() => high.next())).toEqual([100, 200, 400, 800]);
  });

  it("never exceeds the maximum however many attempts fail", () => {
    const backoff = new Backoff({ baseMs: 500, maxMs: 15_000, random: () => 0.999999 });
    const delays = Array.from({ length: 100 }, () => backoff.next());
    expect(Math.max(...delays)).toBe(15_000);
    expect(delays.every(Number.isFinite)).toBe(true);
  });

  it("starts over after reset", () => {
    const backoff = new Backoff({ baseMs: 100, maxMs: 10_000, random: () => 0 });
    backoff.next();
    backoff.next();
    backoff.reset();
    expect(backoff.attempt).toBe(0);
    expect(backoff.next()).toBe(50);
  });

  it("spreads clients apart with jitter", () => {
    let i = 0;
    const values = [0.1, 0.9];
    const backoff = new Backoff({ baseMs: 1000, random: () => values[i++ % 2] });
    const first = backoff.next();
    backoff.reset();
    expect(backoff.next()).not.toBe(first);
  });

  it("rejects a nonsensical configuration", () => {
    expect(() => new Backoff({ baseMs: 0 })).toThrow(RangeError);
    expect(() => new Backoff({ baseMs: 1000, maxMs: 10 })).toThrow(RangeError);
  });
});
