import { describe, expect, it } from "vitest";
import { GenerationStream } from "./stream";

const done = (text: string, finish_reason: "stop" | "length" | "stopped" | "moderated" = "stop") => ({
  type: "generation.done" as const,
  generation_id: "g",
  finish_reason,
  text,
  usage: { prompt_tokens: 3, completion_tokens: 4 },
});

describe("GenerationStream", () => {
  it("appends deltas in seq order and moves to streaming", () => {
    const stream = new GenerationStream("g");
    expect(stream.applyDelta(1, "Hel")).toBe("applied");
    expect(stream.applyDelta(2, "lo")).toBe("applied");
    expect(stream.text).toBe("Hello");
    expect(stream.state).toBe("streaming");
    expect(stream.lastSeq).toBe(2);
  });

  it("drops a replayed seq so no text is repeated", () => {
    const stream = new GenerationStream("g");
    stream.applyDelta(1, "a");
    stream.applyDelta(2, "b");
    expect(stream.applyDelta(2, "b")).toBe("duplicate");
    expect(stream.applyDelta(1, "a")).toBe("duplicate");
    expect(stream.text).toBe("ab");
  });

  it("refuses a delta that skips a seq on a live connection", () => {
    const stream = new GenerationStream("g");
    stream.applyDelta(1, "a");
    expect(stream.applyDelta(3, "c")).toBe("gap");
    expect(stream.text).toBe("a");
    expect(stream.lastSeq).toBe(1);
  });

  it("accepts the checkpoint delta after a resubscribe even though it spans several seqs", () => {
    const stream = new GenerationStream("g", { text: "Hello", lastSeq: 2 });
    stream.resuming();
    expect(stream.applyDelta(9, ", world")).toBe("applied");
    expect(stream.applyDelta(10, "!")).toBe("applied");
    expect(stream.applyDelta(12, "?")).toBe("gap"); // resume allowance is used up
    expect(stream.text).toBe("Hello, world!");
  });

  it("takes the done text as the truth, whatever the deltas built", () => {
    const stream = new GenerationStream("g");
    stream.applyDelta(1, "Hel");
    stream.finish(done("Hello there."));
    expect(stream.text).toBe("Hello there.");
    expect(stream.state).toBe("complete");
    expect(stream.usage).toEqual({ prompt_tokens: 3, completion_tokens: 4 });
  });

  it("flags a stream whose deltas did not add up to the final text", () => {
    const clean = new GenerationStream("g");
    clean.applyDelta(1, "Hello");
    clean.finish(done("Hello"));
    const lossy = new GenerationStream("g");
    lossy.applyDelta(1, "Hel");
    lossy.finish(done("Hello"));
    expect([clean.mismatch, lossy.mismatch]).toEqual([false, true]);
  });

  it.each([
    ["stop", "complete"],
    ["length", "complete"],
    ["stopped", "stopped"],
    ["moderated", "moderated"],
  ] as const)("maps finish_reason %s to state %s", (reason, state) => {
    const stream = new GenerationStream("g");
    stream.finish(done("x", reason));
    expect(stream.state).toBe(state);
  });

  it("ignores deltas that arrive after done", () => {
    const stream = new GenerationStream("g");
    stream.finish(done("final"));
    expect(stream.applyDelta(1, "late")).toBe("ignored");
    expect(stream.text).toBe("final");
  });

  it("keeps the text an error reports and marks the state", () => {
    const stream = new GenerationStream("g");
    stream.applyDelta(1, "partial");
    stream.fail({ type: "generation.error", generation_id: "g", code: "interrupted", message: "Worker lost", text: "partial answer" });
    expect(stream.state).toBe("interrupted");
    expect(stream.text).toBe("partial answer");
    expect(stream.errorMessage).toBe("Worker lost");
  });

  it("notifies listeners on each change", () => {
    const stream = new GenerationStream("g");
    const seen: string[] = [];
    const unsubscribe = stream.subscribe((s) => seen.push(s.text));
    stream.applyDelta(1, "a");
    stream.applyDelta(1, "a");
    unsubscribe();
    stream.applyDelta(2, "b");
    expect(seen).toEqual(["a"]);
  });
});
