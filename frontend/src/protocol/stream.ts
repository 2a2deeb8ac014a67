import type { FinishReason, GenerationDone, GenerationError, GenerationErrorCode } from "./types";

/** A message's state as stored by the server and shown in `data-state`. */
export type MessageState =
  | "sending"
  | "queued"
  | "streaming"
  | "complete"
  | "stopped"
  | "interrupted"
  | "failed"
  | "moderated";

export const FINAL_STATES: ReadonlySet<MessageState> = new Set([
  "complete",
  "stopped",
  "interrupted",
  "failed",
  "moderated",
]);

export function stateForFinish(reason: FinishReason | string): MessageState {
  switch (reason) {
    case "stopped":
      return "stopped";
    case "moderated":
      return "moderated";
    default:
      return "complete"; // "stop" and "length" both end a normal answer
  }
}

export function stateForError(code: GenerationErrorCode | string): MessageState {
  return code === "interrupted" ? "interrupted" : "failed";
}

export type DeltaResult = "applied" | "duplicate" | "gap" | "ignored";

/**
 * The client's copy of one generation's text. Deltas are applied in `seq` order exactly once:
 * a `seq` at or below the last applied one is a duplicate (a replay after a resubscribe) and is
 * dropped; a `seq` that skips ahead on a live connection is a gap and is not applied, so the
 * caller resubscribes from `lastSeq`. The first delta after a resubscribe may cover several
 * seqs at once (the server's checkpoint), so it is accepted whatever it skips.
 * `generation.done` carries the full text and always wins.
 */
export class GenerationStream {
  readonly generationId: string;
  text: string;
  lastSeq: number;
  state: MessageState;
  /** Requests ahead of this one while queued (0 = running); null when unknown. */
  position: number | null = null;
  finishReason: string | null = null;
  errorMessage: string | null = null;
  moderationMessage: string | null = null;
  usage: { prompt_tokens: number; completion_tokens: number } | null = null;
  /**
   * Whether the text built from deltas differed from the final text. On a healthy stream it
   * never does (PROTOCOL.md: the deltas concatenate to the done text), so a true here means a
   * lost or repeated delta that reconciliation repaired. Moderation may rewrite the end, so
   * only normal endings count.
   */
  mismatch = false;
  private expectingResume = false;
  private readonly listeners = new Set<(stream: GenerationStream) => void>();

  constructor(generationId: string, init: { text?: string; lastSeq?: number; state?: MessageState } = {}) {
    this.generationId = generationId;
    this.text = init.text ?? "";
    this.lastSeq = init.lastSeq ?? 0;
    this.state = init.state ?? "queued";
  }

  get finished(): boolean {
    return FINAL_STATES.has(this.state);
  }

  /** Called when a `generation.subscribe` goes out: the next delta may span several seqs. */
  resuming(): void {
    this.expectingResume = true;
  }

  applyDelta(seq: number, text: string): DeltaResult {
    if (this.finished) return "ignored";
    if (seq <= this.lastSeq) return "duplicate";
    if (seq !== this.lastSeq + 1 && !this.expectingResume) return "gap";
    this.expectingResume = false;
    this.text += text;
    this.lastSeq = seq;
    this.state = "streaming";
    this.position = 0;
    this.emit();
    return "applied";
  }

  setPosition(position: number): void {
    if (this.finished) return;
    this.position = position;
    this.emit();
  }

  /** The done message's text is authoritative: it replaces whatever the deltas built. */
  finish(done: GenerationDone): void {
    this.mismatch =
      this.lastSeq > 0 && done.finish_reason !== "moderated" && this.text !== done.text;
    this.text = done.text;
    this.state = stateForFinish(done.finish_reason);
    this.finishReason = done.finish_reason;
    this.usage = done.usage ?? null;
    this.position = null;
    this.emit();
  }

  fail(error: GenerationError): void {
    if (typeof error.text === "string") this.text = error.text;
    this.state = stateForError(error.code);
    this.errorMessage = error.message;
    this.position = null;
    this.emit();
  }

  moderate(message: string): void {
    this.moderationMessage = message;
    this.state = "moderated";
    this.position = null;
    this.emit();
  }

  subscribe(listener: (stream: GenerationStream) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(): void {
    for (const listener of this.listeners) listener(this);
  }
}
