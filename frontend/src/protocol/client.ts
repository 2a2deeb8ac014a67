import { Backoff } from "./backoff";
import { decodeFrame, encodeFrame } from "./framing";
import { GenerationStream, type MessageState } from "./stream";
import {
  CLOSE_FORBIDDEN_ORIGIN,
  CLOSE_UNAUTHORIZED,
  type ChatSend,
  type ClientMessage,
  type ServerMessage,
} from "./types";

/** The subset of the browser WebSocket this client uses; tests pass a fake. */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onclose: ((event: { code: number; reason?: string }) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

const OPEN = 1;

export type ConnectionState =
  | "idle"
  | "connecting"
  | "open"
  | "reconnecting"
  | "unauthorized"
  | "forbidden"
  | "closed";

export interface ConnectionStatus {
  state: ConnectionState;
  /** Reconnect attempts since the last healthy connection. */
  attempt: number;
  /** When the next reconnect fires (epoch ms), while reconnecting. */
  retryAt: number | null;
}

export interface ChatClientOptions {
  url: string;
  createSocket?: (url: string) => SocketLike;
  backoff?: Backoff;
  /** A ping goes out this often; any frame from the server counts as a sign of life. */
  pingIntervalMs?: number;
  /** No frame for this long after a ping: the connection is dead even if no close came. */
  pongTimeoutMs?: number;
  /**
   * A followed generation that has sent nothing for this long is re-subscribed from its last
   * seq. A running one sends `generation.progress` after a couple of quiet seconds, so such a
   * silence means frames were lost between the server and this client.
   */
  stallTimeoutMs?: number;
  now?: () => number;
}

export type SendInput = Omit<ChatSend, "type" | "request_id"> & { request_id?: string };

// A chat.send or regenerate the server has not answered yet. Both carry a request_id that the
// server uses as an idempotency key, so sending one again after a reconnect is safe.
type Pending = ClientMessage & { request_id: string };

let counter = 0;
export function newRequestId(): string {
  counter += 1;
  const random =
    typeof crypto !== "undefined" && "randomUUID" in crypto
      ? crypto.randomUUID()
      : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  return `r-${random}-${counter}`;
}

/**
 * The browser's connection to `/ws/chat/`: one socket, reconnected with backoff, that keeps
 * the generations it follows alive across drops. After every (re)connect it resubscribes each
 * unfinished generation with `after_seq` = the last seq it applied and re-sends every
 * `chat.send` the server has not acknowledged (same `request_id`, so no duplicate message).
 * Framework-free: the UI listens with `onMessage` / `onStatus` and reads `GenerationStream`s.
 */
export class ChatClient {
  private readonly url: string;
  private readonly createSocket: (url: string) => SocketLike;
  private readonly backoff: Backoff;
  private readonly pingIntervalMs: number;
  private readonly pongTimeoutMs: number;
  private readonly now: () => number;
  private socket: SocketLike | null = null;
  private statusValue: ConnectionStatus = { state: "idle", attempt: 0, retryAt: null };
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private deadlineTimer: ReturnType<typeof setTimeout> | null = null;
  private stallTimer: ReturnType<typeof setInterval> | null = null;
  private readonly stallTimeoutMs: number;
  /** When each followed generation last sent a frame (or was subscribed). */
  private readonly heardAt = new Map<string, number>();
  private readonly pending = new Map<string, Pending>();
  private readonly streams = new Map<string, GenerationStream>();
  private readonly messageListeners = new Set<(message: ServerMessage) => void>();
  private readonly statusListeners = new Set<(status: ConnectionStatus) => void>();
  private stopped = false;

  constructor(options: ChatClientOptions) {
    this.url = options.url;
    this.createSocket =
      options.createSocket ?? ((url) => new WebSocket(url) as unknown as SocketLike);
    this.backoff = options.backoff ?? new Backoff();
    this.pingIntervalMs = options.pingIntervalMs ?? 25_000;
    this.pongTimeoutMs = options.pongTimeoutMs ?? 10_000;
    this.stallTimeoutMs = options.stallTimeoutMs ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  get status(): ConnectionStatus {
    return this.statusValue;
  }

  connect(): void {
    this.stopped = false;
    if (this.socket) return;
    this.clearReconnect();
    this.setStatus({ ...this.statusValue, state: this.statusValue.attempt ? "reconnecting" : "connecting", retryAt: null });
    const socket = this.createSocket(this.url);
    this.socket = socket;
    socket.onopen = () => this.handleOpen(socket);
    socket.onmessage = (event) => this.handleFrame(socket, event.data);
    socket.onclose = (event) => this.handleClose(socket, event.code);
    socket.onerror = () => {
      /* a close event always follows; it decides what to do */
    };
  }

  /** Skip the wait of a scheduled reconnect (the user clicked "retry now", or came online). */
  reconnectNow(): void {
    if (this.stopped || this.statusValue.state === "open") return;
    if (this.socket) this.dropSocket(this.socket);
    this.connect();
  }

  /** Close for good (logout). Pending sends and followed generations are dropped. */
  close(): void {
    this.stopped = true;
    this.clearReconnect();
    if (this.socket) this.dropSocket(this.socket);
    this.pending.clear();
    this.streams.clear();
    this.heardAt.clear();
    this.setStatus({ state: "closed", attempt: 0, retryAt: null });
  }

  onMessage(listener: (message: ServerMessage) => void): () => void {
    this.messageListeners.add(listener);
    return () => this.messageListeners.delete(listener);
  }

  onStatus(listener: (status: ConnectionStatus) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  /** Send a message; returns its request_id. Survives reconnects until the server answers. */
  send(input: SendInput): string {
    const request_id = input.request_id ?? newRequestId();
    const frame: ChatSend = { ...input, type: "chat.send", request_id };
    encodeFrame(frame); // throws FrameTooLargeError before anything is queued
    this.queue(frame);
    return request_id;
  }

  /** Ask for a new sibling answer; returns the request_id the server echoes in chat.accepted. */
  regenerate(messageId: string, model?: string): string {
    const request_id = newRequestId();
    this.queue({ type: "generation.regenerate", message_id: messageId, request_id, ...(model ? { model } : {}) });
    return request_id;
  }

  stop(generationId: string): void {
    this.transmit({ type: "generation.stop", generation_id: generationId });
  }

  /**
   * Follow a generation (one found running after a page load, or one this client started).
   * Subscribes at once when connected, and again after every reconnect until it finishes.
   */
  follow(generationId: string, init: { text?: string; lastSeq?: number; state?: MessageState } = {}): GenerationStream {
    let stream = this.streams.get(generationId);
    if (!stream) {
      stream = new GenerationStream(generationId, init);
      this.streams.set(generationId, stream);
      if (!stream.finished) this.subscribe(stream);
    }
    return stream;
  }

  stream(generationId: string): GenerationStream | undefined {
    return this.streams.get(generationId);
  }

  /** Whether a chat.send or regenerate with this id still waits for the server's answer. */
  isPending(requestId: string): boolean {
    return this.pending.has(requestId);
  }

  private queue(frame: Pending): void {
    this.pending.set(frame.request_id, frame);
    this.transmit(frame);
  }

  private subscribe(stream: GenerationStream): void {
    if (this.socket?.readyState !== OPEN) return; // handleOpen resubscribes
    this.heardAt.set(stream.generationId, this.now());
    stream.resuming();
    this.transmit({ type: "generation.subscribe", generation_id: stream.generationId, after_seq: stream.lastSeq });
  }

  private transmit(frame: ClientMessage): boolean {
    if (!this.socket || this.socket.readyState !== OPEN) return false;
    this.socket.send(encodeFrame(frame));
    return true;
  }

  private handleOpen(socket: SocketLike): void {
    if (socket !== this.socket) return;
    this.setStatus({ state: "open", attempt: this.statusValue.attempt, retryAt: null });
    this.transmit({ type: "ping" });
    this.armDeadline();
    this.pingTimer = setInterval(() => {
      this.transmit({ type: "ping" });
      this.armDeadline();
    }, this.pingIntervalMs);
    this.stallTimer = setInterval(() => this.resubscribeStalled(), Math.max(250, this.stallTimeoutMs / 4));
    for (const stream of this.streams.values()) {
      if (!stream.finished) this.subscribe(stream);
    }
    for (const frame of this.pending.values()) this.transmit(frame);
  }

  private handleFrame(socket: SocketLike, data: unknown): void {
    if (socket !== this.socket) return;
    this.disarmDeadline();
    if (this.statusValue.attempt) this.setStatus({ state: "open", attempt: 0, retryAt: null });
    this.backoff.reset();
    const message = decodeFrame(data);
    if (!message) return;
    this.apply(message);
    for (const listener of this.messageListeners) listener(message);
  }

  /** Re-subscribe every unfinished generation that has been silent past the stall timeout. */
  private resubscribeStalled(): void {
    const now = this.now();
    for (const stream of this.streams.values()) {
      if (stream.finished) {
        this.heardAt.delete(stream.generationId);
        continue;
      }
      const heard = this.heardAt.get(stream.generationId);
      if (heard === undefined) this.heardAt.set(stream.generationId, now); // the clock starts now
      else if (now - heard >= this.stallTimeoutMs) this.subscribe(stream);
    }
  }

  private apply(message: ServerMessage): void {
    if ("generation_id" in message && message.generation_id && this.streams.has(message.generation_id)) {
      this.heardAt.set(message.generation_id, this.now());
    }
    switch (message.type) {
      case "chat.accepted": {
        this.pending.delete(message.request_id);
        if (!this.streams.has(message.generation_id)) {
          this.streams.set(message.generation_id, new GenerationStream(message.generation_id));
        }
        this.heardAt.set(message.generation_id, this.now());
        break;
      }
      case "generation.queued":
        this.streams.get(message.generation_id)?.setPosition(message.position);
        break;
      case "generation.delta": {
        const stream = this.streams.get(message.generation_id);
        if (stream && stream.applyDelta(message.seq, message.text) === "gap") this.subscribe(stream);
        break;
      }
      case "generation.progress": {
        // Alive; a seq beyond the last applied delta means deltas were lost on the way.
        const stream = this.streams.get(message.generation_id);
        if (stream && !stream.finished && message.seq > stream.lastSeq) this.subscribe(stream);
        break;
      }
      case "generation.done": {
        const stream = this.streams.get(message.generation_id);
        stream?.finish(message);
        if (stream?.mismatch) {
          console.warn(`[chat] streamed text of generation ${message.generation_id} differed from the final text; reconciled`);
        }
        break;
      }
      case "generation.error":
        this.streams.get(message.generation_id)?.fail(message);
        break;
      case "moderation.blocked":
        if (message.request_id) this.pending.delete(message.request_id);
        if (message.generation_id) this.streams.get(message.generation_id)?.moderate(message.message);
        break;
      case "error":
        if (message.request_id) this.pending.delete(message.request_id);
        break;
      default:
        break;
    }
  }

  private handleClose(socket: SocketLike, code: number): void {
    if (socket !== this.socket) return;
    this.teardown();
    if (code === CLOSE_UNAUTHORIZED || code === CLOSE_FORBIDDEN_ORIGIN) {
      this.stopped = true;
      this.setStatus({ state: code === CLOSE_UNAUTHORIZED ? "unauthorized" : "forbidden", attempt: 0, retryAt: null });
      return;
    }
    if (this.stopped) return;
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const delay = this.backoff.next();
    this.setStatus({ state: "reconnecting", attempt: this.backoff.attempt, retryAt: this.now() + delay });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, delay);
  }

  /** Forget a socket without waiting for its close event (it may never come on a dead link). */
  private dropSocket(socket: SocketLike): void {
    socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
    try {
      socket.close(1000);
    } catch {
      /* already closed */
    }
    this.teardown();
  }

  private teardown(): void {
    this.socket = null;
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
    if (this.stallTimer) clearInterval(this.stallTimer);
    this.stallTimer = null;
    this.disarmDeadline();
  }

  private armDeadline(): void {
    if (this.deadlineTimer) return;
    this.deadlineTimer = setTimeout(() => {
      this.deadlineTimer = null;
      const socket = this.socket;
      if (!socket || this.stopped) return;
      this.dropSocket(socket);
      this.scheduleReconnect();
    }, this.pongTimeoutMs);
  }

  private disarmDeadline(): void {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = null;
  }

  private clearReconnect(): void {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
  }

  private setStatus(status: ConnectionStatus): void {
    this.statusValue = status;
    for (const listener of this.statusListeners) listener(status);
  }
}
