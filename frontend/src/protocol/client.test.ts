import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Backoff } from "./backoff";
import { ChatClient, type ConnectionStatus } from "./client";
import { FakeSocket } from "./fake-socket.test-helper";
import type { ServerMessage } from "./types";

function makeClient(extra: Partial<ConstructorParameters<typeof ChatClient>[0]> = {}) {
  const client = new ChatClient({
    url: "ws://test/ws/chat/",
    createSocket: (url) => new FakeSocket(url),
    backoff: new Backoff({ baseMs: 1000, maxMs: 8000, random: () => 0 }),
    ...extra,
  });
  const statuses: ConnectionStatus[] = [];
  const messages: ServerMessage[] = [];
  client.onStatus((s) => statuses.push(s));
  client.onMessage((m) => messages.push(m));
  return { client, statuses, messages };
}

const accepted = (request_id: string, generation_id = "g1") => ({
  type: "chat.accepted",
  request_id,
  conversation_id: "c1",
  user_message: { id: "u1", parent_id: null, content: "hi", created_at: "2025-01-01T00:00:00Z" },
  generation_id,
  assistant_message_id: "a1",
});
const delta = (seq: number, text: string, generation_id = "g1") => ({ type: "generation.delta", generation_id, seq, text });

beforeEach(() => {
  FakeSocket.instances = [];
  vi.useFakeTimers();
});
afterEach(() => vi.useRealTimers());

describe("ChatClient connection", () => {
  it("reports connecting, then open, and pings on open", () => {
    const { client, statuses } = makeClient();
    client.connect();
    FakeSocket.latest().open();
    expect(statuses.map((s) => s.state)).toEqual(["connecting", "open"]);
    expect(FakeSocket.latest().sentOfType("ping")).toHaveLength(1);
  });

  it("reconnects after a drop with growing delays, and resets once the server answers", () => {
    const { client, statuses } = makeClient();
    client.connect();
    FakeSocket.latest().open();
    FakeSocket.latest().drop();
    expect(statuses.at(-1)).toMatchObject({ state: "reconnecting", attempt: 1 });
    vi.advanceTimersByTime(499);
    expect(FakeSocket.instances).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(FakeSocket.instances).toHaveLength(2);
    FakeSocket.latest().drop(); // the second try fails before opening
    vi.advanceTimersByTime(999);
    expect(FakeSocket.instances).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(FakeSocket.instances).toHaveLength(3);
    FakeSocket.latest().open();
    FakeSocket.latest().receive({ type: "pong" });
    expect(statuses.at(-1)).toMatchObject({ state: "open", attempt: 0 });
    FakeSocket.latest().drop();
    vi.advanceTimersByTime(500); // back to the first delay
    expect(FakeSocket.instances).toHaveLength(4);
  });

  it("does not reconnect when the server says the user is not authenticated", () => {
    const { client, statuses } = makeClient();
    client.connect();
    FakeSocket.latest().open();
    FakeSocket.latest().drop(4401);
    vi.advanceTimersByTime(60_000);
    expect(FakeSocket.instances).toHaveLength(1);
    expect(statuses.at(-1)?.state).toBe("unauthorized");
  });

  it("treats a silent connection as dead when no pong comes back", () => {
    const { client } = makeClient({ pingIntervalMs: 5000, pongTimeoutMs: 2000 });
    client.connect();
    const first = FakeSocket.latest();
    first.open();
    vi.advanceTimersByTime(2000);
    expect(first.closedWith).toBe(1000);
    vi.advanceTimersByTime(500);
    expect(FakeSocket.instances).toHaveLength(2);
  });

  it("reconnects at once on request instead of waiting for the backoff", () => {
    const { client } = makeClient();
    client.connect();
    FakeSocket.latest().open();
    FakeSocket.latest().drop();
    client.reconnectNow();
    expect(FakeSocket.instances).toHaveLength(2);
  });
});

describe("ChatClient sending", () => {
  it("queues a send made while disconnected and delivers it on open", () => {
    const { client } = makeClient();
    client.connect();
    const requestId = client.send({ conversation_id: null, content: "hello" });
    FakeSocket.latest().open();
    expect(FakeSocket.latest().sentOfType("chat.send")).toEqual([
      { type: "chat.send", request_id: requestId, conversation_id: null, content: "hello" },
    ]);
  });

  it("re-sends an unacknowledged send with the same request_id after a reconnect", () => {
    const { client } = makeClient();
    client.connect();
    FakeSocket.latest().open();
    const requestId = client.send({ conversation_id: "c1", content: "hello" });
    FakeSocket.latest().drop();
    vi.advanceTimersByTime(500);
    FakeSocket.latest().open();
    const resent = FakeSocket.latest().sentOfType("chat.send");
    expect(resent.map((f) => f.request_id)).toEqual([requestId]);
  });

  it("forgets a send once it is accepted, refused or blocked", () => {
    const { client } = makeClient();
    client.connect();
    FakeSocket.latest().open();
    const a = client.send({ conversation_id: "c1", content: "a" });
    const b = client.send({ conversation_id: "c1", content: "b" });
    const c = client.send({ conversation_id: "c1", content: "c" });
    FakeSocket.latest().receive(accepted(a));
    FakeSocket.latest().receive({ type: "error", request_id: b, code: "busy", message: "Busy", retry_after: 5 });
    FakeSocket.latest().receive({ type: "moderation.blocked", request_id: c, categories: ["x"], message: "No." });
    expect([a, b, c].map((id) => client.isPending(id))).toEqual([false, false, false]);
    FakeSocket.latest().drop();
    vi.advanceTimersByTime(500);
    FakeSocket.latest().open();
    expect(FakeSocket.latest().sentOfType("chat.send")).toHaveLength(0);
  });
});

describe("ChatClient resume", () => {
  it("resubscribes an unfinished generation with the last applied seq after a drop", () => {
    const { client } = makeClient();
    client.connect();
    FakeSocket.latest().open();
    const requestId = client.send({ conversation_id: null, content: "hi" });
    FakeSocket.latest().receive(accepted(requestId));
    FakeSocket.latest().receive(delta(1, "Once"));
    FakeSocket.latest().receive(delta(2, " upon"));
    FakeSocket.latest().drop();
    vi.advanceTimersByTime(500);
    FakeSocket.latest().open();
    expect(FakeSocket.latest().sentOfType("generation.subscribe")).toEqual([
      { type: "generation.subscribe", generation_id: "g1", after_seq: 2 },
    ]);
    // The server replays from its checkpoint (overlapping what we have) then goes live.
    FakeSocket.latest().receive(delta(2, " upon"));
    FakeSocket.latest().receive(delta(5, " a time"));
    FakeSocket.latest().receive(delta(6, ","));
    expect(client.stream("g1")?.text).toBe("Once upon a time,");
  });

  it("follows a generation found running after a page load from its checkpoint", () => {
    const { client } = makeClient();
    client.connect();
    FakeSocket.latest().open();
    const stream = client.follow("g9", { text: "Partial", lastSeq: 7, state: "streaming" });
    expect(FakeSocket.latest().sentOfType("generation.subscribe")).toEqual([
      { type: "generation.subscribe", generation_id: "g9", after_seq: 7 },
    ]);
    FakeSocket.latest().receive(delta(8, " text", "g9"));
    expect(stream.text).toBe("Partial text");
  });

  it("resubscribes a generation that goes silent on an open connection, from its last seq", () => {
    const { client } = makeClient({ stallTimeoutMs: 8000, pingIntervalMs: 60_000 });
    client.connect();
    FakeSocket.latest().open();
    const requestId = client.send({ conversation_id: null, content: "hi" });
    FakeSocket.latest().receive(accepted(requestId));
    FakeSocket.latest().receive(delta(1, "Once"));
    vi.advanceTimersByTime(6000);
    FakeSocket.latest().receive({ type: "generation.progress", generation_id: "g1", seq: 1 });
    vi.advanceTimersByTime(6000); // quiet, but the progress said it is alive
    expect(FakeSocket.latest().sentOfType("generation.subscribe")).toHaveLength(0);
    vi.advanceTimersByTime(3000); // 9 s without a frame: lost
    expect(FakeSocket.latest().sentOfType("generation.subscribe")).toEqual([
      { type: "generation.subscribe", generation_id: "g1", after_seq: 1 },
    ]);
    expect(FakeSocket.instances).toHaveLength(1); // the connection itself stays
    FakeSocket.latest().receive(delta(3, " upon a"));
    FakeSocket.latest().receive({ ...delta(0, ""), type: "generation.done", finish_reason: "stop", text: "Once upon a", usage: { prompt_tokens: 1, completion_tokens: 3 } });
    vi.advanceTimersByTime(30_000); // finished: never resubscribed again
    expect(FakeSocket.latest().sentOfType("generation.subscribe")).toHaveLength(1);
    expect(client.stream("g1")?.text).toBe("Once upon a");
  });

  it("resubscribes at once when a progress is ahead of the last applied delta", () => {
    const { client } = makeClient();
    client.connect();
    FakeSocket.latest().open();
    const requestId = client.send({ conversation_id: null, content: "hi" });
    FakeSocket.latest().receive(accepted(requestId));
    FakeSocket.latest().receive(delta(1, "a"));
    FakeSocket.latest().receive({ type: "generation.progress", generation_id: "g1", seq: 3 });
    expect(FakeSocket.latest().sentOfType("generation.subscribe")).toEqual([
      { type: "generation.subscribe", generation_id: "g1", after_seq: 1 },
    ]);
    FakeSocket.latest().receive(delta(3, "bc"));
    expect(client.stream("g1")?.text).toBe("abc");
  });

  it("resubscribes when a seq is skipped, then applies the server's catch-up delta", () => {
    const { client } = makeClient();
    client.connect();
    FakeSocket.latest().open();
    const requestId = client.send({ conversation_id: null, content: "hi" });
    FakeSocket.latest().receive(accepted(requestId));
    FakeSocket.latest().receive(delta(1, "a"));
    FakeSocket.latest().receive(delta(3, "c")); // seq 2 was lost
    expect(FakeSocket.latest().sentOfType("generation.subscribe")).toEqual([
      { type: "generation.subscribe", generation_id: "g1", after_seq: 1 },
    ]);
    FakeSocket.latest().receive(delta(3, "bc"));
    expect(client.stream("g1")?.text).toBe("abc");
  });

  it("stops resubscribing a generation once it is done, and reconciles to the done text", () => {
    const { client } = makeClient();
    client.connect();
    FakeSocket.latest().open();
    const requestId = client.send({ conversation_id: null, content: "hi" });
    FakeSocket.latest().receive(accepted(requestId));
    FakeSocket.latest().receive(delta(1, "Hel"));
    FakeSocket.latest().receive({
      type: "generation.done",
      generation_id: "g1",
      finish_reason: "stop",
      text: "Hello!",
      usage: { prompt_tokens: 1, completion_tokens: 2 },
    });
    expect(client.stream("g1")?.text).toBe("Hello!");
    FakeSocket.latest().drop();
    vi.advanceTimersByTime(500);
    FakeSocket.latest().open();
    expect(FakeSocket.latest().sentOfType("generation.subscribe")).toHaveLength(0);
  });

  it("reports queue position until the first delta", () => {
    const { client } = makeClient();
    client.connect();
    FakeSocket.latest().open();
    const requestId = client.send({ conversation_id: null, content: "hi" });
    FakeSocket.latest().receive(accepted(requestId));
    FakeSocket.latest().receive({ type: "generation.queued", generation_id: "g1", position: 3 });
    expect(client.stream("g1")).toMatchObject({ position: 3, state: "queued" });
    FakeSocket.latest().receive(delta(1, "x"));
    expect(client.stream("g1")).toMatchObject({ position: 0, state: "streaming" });
  });
});
