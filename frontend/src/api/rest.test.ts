import { afterEach, describe, expect, it, vi } from "vitest";
import { conversations } from "./rest";

function page(ids: string[], next: string | null) {
  return {
    id: "c1",
    title: "Long",
    model: "m",
    updated_at: "2026-01-01T00:00:00Z",
    archived: false,
    current_leaf_id: ids.at(-1) ?? null,
    messages: ids.map((id) => ({ id, conversation_id: "c1", parent_id: null, role: "user", content: id, state: "complete", created_at: "" })),
    messages_next_cursor: next,
  };
}

describe("conversations.get", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("follows messages_next_cursor until every message is loaded", async () => {
    const pages: Record<string, unknown> = {
      "/api/conversations/c1": page(["m1", "m2"], "k 1"),
      "/api/conversations/c1?cursor=k%201": page(["m3", "m4"], "k2"),
      "/api/conversations/c1?cursor=k2": page(["m5"], null),
    };
    const fetched: string[] = [];
    vi.stubGlobal("fetch", async (path: string) => {
      fetched.push(path);
      return new Response(JSON.stringify(pages[path]), { status: 200 });
    });

    const conversation = await conversations.get("c1");

    expect(conversation.messages.map((m) => m.id)).toEqual(["m1", "m2", "m3", "m4", "m5"]);
    expect(fetched).toEqual(Object.keys(pages));
    expect(conversation.messages_next_cursor).toBeNull();
  });

  it("makes one request for a server that sends no cursor", async () => {
    const body = page(["m1"], null) as Record<string, unknown>;
    delete body.messages_next_cursor;
    const fetch = vi.fn(async () => new Response(JSON.stringify(body), { status: 200 }));
    vi.stubGlobal("fetch", fetch);

    const conversation = await conversations.get("c1");

    expect(conversation.messages.map((m) => m.id)).toEqual(["m1"]);
    expect(fetch).toHaveBeenCalledTimes(1);
  });
});
