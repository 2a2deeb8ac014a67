import { afterEach, describe, expect, it, vi } from "vitest";
import type { ConversationSummary } from "../api/rest";
import { ConversationList } from "./conversation-list";

function summary(id: string, archived = false): ConversationSummary {
  return { id, title: `T ${id}`, model: null, updated_at: "2025-01-01T00:00:00Z", archived };
}

/** The list API answers one page with `items`. */
function serve(items: ConversationSummary[]): void {
  vi.stubGlobal("fetch", vi.fn(async () => new Response(JSON.stringify({ results: items, next_cursor: null }), { status: 200 })));
}

const ids = (list: ConversationList) => list.getSnapshot().items.map((c) => c.id);

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("ConversationList.applyChange (conversation.updated)", () => {
  it("retitles a listed conversation and leaves others alone", async () => {
    serve([summary("a"), summary("b")]);
    const list = new ConversationList();
    await list.reload();
    list.applyChange({ id: "b", title: "Renamed", archived: false, deleted: false });
    expect(list.getSnapshot().items.map((c) => [c.id, c.title])).toEqual([["a", "T a"], ["b", "Renamed"]]);
  });

  it("a deleted conversation leaves the list", async () => {
    serve([summary("a"), summary("b")]);
    const list = new ConversationList();
    await list.reload();
    list.applyChange({ id: "a", title: "T a", archived: false, deleted: true });
    expect(ids(list)).toEqual(["b"]);
  });

  it("an archived conversation leaves the active list, an unarchived one the Archived list", async () => {
    serve([summary("a"), summary("b")]);
    const list = new ConversationList();
    await list.reload();
    list.applyChange({ id: "a", title: "T a", archived: true, deleted: false });
    expect(ids(list)).toEqual(["b"]);

    serve([summary("x", true), summary("y", true)]);
    await list.reload({ archived: true });
    list.applyChange({ id: "y", title: "T y", archived: true, deleted: false });
    expect(ids(list)).toEqual(["x", "y"]);
    list.applyChange({ id: "x", title: "T x", archived: false, deleted: false });
    expect(ids(list)).toEqual(["y"]);
  });

  it("a change to a conversation the list has not loaded adds nothing", async () => {
    serve([summary("a")]);
    const list = new ConversationList();
    await list.reload();
    const before = list.getSnapshot();
    list.applyChange({ id: "zzz", title: "New elsewhere", archived: false, deleted: false });
    expect(list.getSnapshot()).toBe(before);
  });

  it("an answered archived conversation is not bumped into the active list", async () => {
    serve([summary("a")]);
    const list = new ConversationList();
    await list.reload();
    list.bump({ id: "old", title: "Archived one", archived: true });
    list.bump({ id: "new", title: "Fresh" });
    expect(ids(list)).toEqual(["new", "a"]);
  });
});
