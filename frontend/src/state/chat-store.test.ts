import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Backoff, ChatClient } from "../protocol";
import { FakeSocket } from "../protocol/fake-socket.test-helper";
import { ChatStore, type ConversationChange } from "./chat-store";
import { pathTo } from "./tree";

function setup() {
  const client = new ChatClient({
    url: "ws://test/ws/chat/",
    createSocket: (url) => new FakeSocket(url),
    backoff: new Backoff({ random: () => 0 }),
  });
  const created: string[] = [];
  const finished: string[] = [];
  const changes: ConversationChange[] = [];
  const store = new ChatStore(client, {
    created: (id) => created.push(id),
    finished: (m) => finished.push(`${m.id}:${m.state}`),
    updated: (change) => changes.push(change),
  });
  const drafts: string[] = [];
  store.onRestoreDraft((text) => drafts.push(text));
  client.connect();
  FakeSocket.latest().open();
  return { client, store, created, finished, changes, drafts, socket: FakeSocket.latest() };
}

function accept(socket: FakeSocket, requestId: string, n: number, parent: string | null, conversation = "c1") {
  socket.receive({
    type: "chat.accepted",
    request_id: requestId,
    conversation_id: conversation,
    user_message: { id: `u${n}`, parent_id: parent, content: `q${n}`, created_at: `2025-01-01T00:00:0${n}Z` },
    generation_id: `g${n}`,
    assistant_message_id: `a${n}`,
  });
}

const done = (generation_id: string, text: string, finish_reason = "stop") => ({
  type: "generation.done",
  generation_id,
  finish_reason,
  text,
  usage: { prompt_tokens: 1, completion_tokens: 1 },
});

beforeEach(() => {
  FakeSocket.instances = [];
});

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("ChatStore", () => {
  it("shows a sent message at once, then the stored one and a queued answer once accepted", () => {
    const { store, socket, created } = setup();
    store.send("  hello  ");
    const frame = socket.sentOfType("chat.send")[0];
    expect(frame).toMatchObject({ conversation_id: null, content: "hello" });
    expect(frame).not.toHaveProperty("parent_id");
    const optimistic = pathTo(store.getSnapshot().messages, store.getSnapshot().leafId);
    expect(optimistic.map((m) => m.state)).toEqual(["sending"]);

    accept(socket, frame.request_id as string, 1, null);

    const { messages, leafId, conversationId, activeGenerationId } = store.getSnapshot();
    expect(pathTo(messages, leafId).map((m) => [m.id, m.state])).toEqual([["u1", "complete"], ["a1", "queued"]]);
    expect([conversationId, activeGenerationId, created]).toEqual(["c1", "g1", ["c1"]]);
  });

  it("records the done text, frees the composer and announces the answer", () => {
    const { store, socket, finished } = setup();
    store.send("hello");
    accept(socket, socket.sentOfType("chat.send")[0].request_id as string, 1, null);
    socket.receive({ type: "generation.delta", generation_id: "g1", seq: 1, text: "Hi there" });
    socket.receive(done("g1", "Hi there"));

    expect(store.getSnapshot().messages.a1).toMatchObject({ content: "Hi there", state: "complete" });
    expect(store.isBusy()).toBe(false);
    expect(finished).toEqual(["a1:complete"]);
  });

  it("sends the next message after the leaf, with the chosen model and system prompt", () => {
    const { store, socket } = setup();
    store.setModel("large");
    store.setSystemPrompt("Be brief.");
    store.send("one");
    accept(socket, socket.sentOfType("chat.send")[0].request_id as string, 1, null);
    socket.receive(done("g1", "ok"));
    store.send("two");

    expect(socket.sentOfType("chat.send")[1]).toMatchObject({
      conversation_id: "c1",
      parent_id: "a1",
      model: "large",
      options: { system_prompt: "Be brief." },
    });
  });

  it("puts a refused message back in the composer and explains when to retry", () => {
    const { store, socket, drafts } = setup();
    store.send("please");
    const requestId = socket.sentOfType("chat.send")[0].request_id;
    socket.receive({ type: "error", request_id: requestId, code: "rate_limited", message: "Slow down.", retry_after: 30 });

    const snapshot = store.getSnapshot();
    expect(drafts).toEqual(["please"]);
    expect(Object.keys(snapshot.messages)).toEqual([]);
    expect(snapshot.notice).toMatchObject({ kind: "rate_limited", message: "Slow down." });
    expect(snapshot.notice?.retryAt).toBeGreaterThan(Date.now() + 25_000);
    expect(store.isBusy()).toBe(false);
  });

  it("an edit branches from the edited message's parent and the arrows switch branches", () => {
    const { store, socket } = setup();
    store.send("q1");
    accept(socket, socket.sentOfType("chat.send")[0].request_id as string, 1, null);
    socket.receive(done("g1", "a1"));
    store.send("q2");
    accept(socket, socket.sentOfType("chat.send")[1].request_id as string, 2, "a1");
    socket.receive(done("g2", "a2"));

    store.send("q2 edited", { parentId: "a1" });
    expect(socket.sentOfType("chat.send")[2]).toMatchObject({ parent_id: "a1", content: "q2 edited" });
    accept(socket, socket.sentOfType("chat.send")[2].request_id as string, 3, "a1");
    socket.receive(done("g3", "a3"));
    const ids = () => pathTo(store.getSnapshot().messages, store.getSnapshot().leafId).map((m) => m.id);
    expect(ids()).toEqual(["u1", "a1", "u3", "a3"]);

    store.selectSibling("u3", -1);
    expect(ids()).toEqual(["u1", "a1", "u2", "a2"]);
    store.selectSibling("u2", 1);
    expect(ids()).toEqual(["u1", "a1", "u3", "a3"]);
  });

  it("editing the first message sends an explicit null parent: a new root beside it", () => {
    const { store, socket } = setup();
    store.send("q1");
    accept(socket, socket.sentOfType("chat.send")[0].request_id as string, 1, null);
    socket.receive(done("g1", "a1"));

    store.send("q1 edited", { parentId: null });
    const frame = socket.sentOfType("chat.send")[1];
    expect(frame).toHaveProperty("parent_id", null);
    accept(socket, frame.request_id as string, 2, null);
    socket.receive(done("g2", "a2"));
    const ids = () => pathTo(store.getSnapshot().messages, store.getSnapshot().leafId).map((m) => m.id);
    expect(ids()).toEqual(["u2", "a2"]);

    store.selectSibling("u2", -1);
    expect(ids()).toEqual(["u1", "a1"]);
  });

  it("a regenerated answer becomes a sibling of the first", () => {
    const { store, socket } = setup();
    store.send("q");
    accept(socket, socket.sentOfType("chat.send")[0].request_id as string, 1, null);
    socket.receive(done("g1", "first"));
    store.regenerate("a1");
    const frame = socket.sentOfType("generation.regenerate")[0];
    expect(frame).toMatchObject({ message_id: "a1" });
    socket.receive({
      type: "chat.accepted",
      request_id: frame.request_id,
      conversation_id: "c1",
      user_message: { id: "u1", parent_id: null, content: "q", created_at: "2025-01-01T00:00:01Z" },
      generation_id: "g9",
      assistant_message_id: "a9",
    });

    const { messages, leafId } = store.getSnapshot();
    expect(leafId).toBe("a9");
    expect(messages.a9).toMatchObject({ parentId: "u1", state: "queued" });
    store.selectSibling("a9", -1);
    expect(store.getSnapshot().leafId).toBe("a1");
  });

  it("with Auto, sends and regenerates ask for auto, and the answer names the model that wrote it", () => {
    const { store, socket } = setup();
    store.setModel("auto");
    store.send("q");
    expect(socket.sentOfType("chat.send")[0]).toMatchObject({ model: "auto" });
    accept(socket, socket.sentOfType("chat.send")[0].request_id as string, 1, null);
    socket.receive({ ...done("g1", "first"), model: "gemma3-270m" });
    expect(store.getSnapshot().messages.a1).toMatchObject({ model: "gemma3-270m", state: "complete" });

    store.regenerate("a1");
    expect(socket.sentOfType("generation.regenerate")[0]).toMatchObject({ message_id: "a1", model: "auto" });
  });

  it("opens a conversation started with Auto on Auto, and one on a named model on that model", async () => {
    const conversation = (id: string, model_choice: string) => ({
      id, title: "T", model: "smollm2-135m", model_choice, updated_at: "2025-01-01T00:00:00Z",
      archived: false, messages: [], current_leaf_id: null,
    });
    const bodies = [conversation("c8", "auto"), conversation("c9", "smollm2-135m")];
    vi.stubGlobal("fetch", vi.fn(async () => new Response(JSON.stringify(bodies.shift()), { status: 200 })));
    const { store } = setup();
    await store.open("c8");
    expect(store.getSnapshot()).toMatchObject({ conversationId: "c8", model: "auto" });
    store.setModel("gemma3-270m");
    await store.open("c9");
    expect(store.getSnapshot()).toMatchObject({ conversationId: "c9", model: "smollm2-135m" });
  });

  it("regenerates on the conversation's model when a named model is picked", () => {
    const { store, socket } = setup();
    store.setModel("smollm2-135m");
    store.send("q");
    accept(socket, socket.sentOfType("chat.send")[0].request_id as string, 1, null);
    socket.receive(done("g1", "first"));
    store.regenerate("a1");
    expect(socket.sentOfType("generation.regenerate")[0]).not.toHaveProperty("model");
  });

  it("ignores a send while an answer is still being written", () => {
    const { store, socket } = setup();
    store.send("q");
    store.send("again");
    expect(socket.sentOfType("chat.send")).toHaveLength(1);
  });

  describe("conversation.updated", () => {
    function openC1(socket: FakeSocket, store: ChatStore) {
      store.send("q");
      accept(socket, socket.sentOfType("chat.send")[0].request_id as string, 1, null);
      socket.receive(done("g1", "answer"));
    }

    it("retitles and marks the open conversation, and passes every change on", () => {
      const { store, socket, changes } = setup();
      openC1(socket, store);
      socket.receive({ type: "conversation.updated", conversation_id: "c1", title: "Renamed", archived: true, deleted: false });
      expect(store.getSnapshot()).toMatchObject({ conversationId: "c1", title: "Renamed", archived: true, status: "ready" });
      expect(Object.keys(store.getSnapshot().messages)).toEqual(["u1", "a1"]);

      socket.receive({ type: "conversation.updated", conversation_id: "c1", title: "Renamed", archived: false, deleted: false });
      expect(store.getSnapshot().archived).toBe(false);
      expect(changes).toEqual([
        { id: "c1", title: "Renamed", archived: true, deleted: false },
        { id: "c1", title: "Renamed", archived: false, deleted: false },
      ]);
    });

    it("reads a server's message without archived and deleted as neither (older servers)", () => {
      const { store, socket, changes } = setup();
      openC1(socket, store);
      socket.receive({ type: "conversation.updated", conversation_id: "c1", title: "A title" });
      expect(store.getSnapshot()).toMatchObject({ title: "A title", archived: false, status: "ready" });
      expect(changes).toEqual([{ id: "c1", title: "A title", archived: false, deleted: false }]);
    });

    it("a deleted open conversation is shown as deleted, with nothing left to send to", () => {
      const { store, socket, changes } = setup();
      store.setModel("large");
      openC1(socket, store);
      store.send("follow-up");
      expect(store.isBusy()).toBe(true);

      socket.receive({ type: "conversation.updated", conversation_id: "c1", title: "Gone", archived: false, deleted: true });

      const snapshot = store.getSnapshot();
      expect(snapshot).toMatchObject({ conversationId: "c1", status: "not_found", leafId: null, messages: {}, model: "large" });
      expect(store.isBusy()).toBe(false);
      expect(changes).toEqual([{ id: "c1", title: "Gone", archived: false, deleted: true }]);
    });

    it("a change to another conversation leaves the open one alone", () => {
      const { store, socket, changes } = setup();
      openC1(socket, store);
      const before = store.getSnapshot();
      socket.receive({ type: "conversation.updated", conversation_id: "c2", title: "Other", archived: true, deleted: true });
      expect(store.getSnapshot()).toBe(before);
      expect(changes).toEqual([{ id: "c2", title: "Other", archived: true, deleted: true }]);
    });

    it("a malformed archived or deleted drops the frame", () => {
      const { store, socket, changes } = setup();
      openC1(socket, store);
      socket.receive({ type: "conversation.updated", conversation_id: "c1", title: "X", archived: "yes" });
      socket.receive({ type: "conversation.updated", conversation_id: "c1", title: "X", deleted: null });
      expect(store.getSnapshot().title).not.toBe("X");
      expect(changes).toEqual([]);
    });

    it("an opened conversation is marked archived from the API", async () => {
      const body = { id: "c7", title: "Old", model: null, updated_at: "2025-01-01T00:00:00Z", archived: true, messages: [], current_leaf_id: null };
      vi.stubGlobal("fetch", vi.fn(async () => new Response(JSON.stringify(body), { status: 200 })));
      const { store, socket } = setup();
      await store.open("c7");
      expect(store.getSnapshot()).toMatchObject({ conversationId: "c7", status: "ready", archived: true });
      socket.receive({ type: "conversation.updated", conversation_id: "c7", title: "Old", archived: false });
      expect(store.getSnapshot().archived).toBe(false);
    });
  });
});
