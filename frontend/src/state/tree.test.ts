import { describe, expect, it } from "vitest";
import { type ChatMessage, deepestLeaf, indexChildren, pathTo, siblingInfo } from "./tree";

let clock = 0;
function msg(id: string, parentId: string | null, role: ChatMessage["role"] = "user"): ChatMessage {
  clock += 1;
  return { id, parentId, role, content: id, state: "complete", createdAt: `2025-01-01T00:00:${String(clock).padStart(2, "0")}Z` };
}

// u1 ─ a1
//    └ a2 ─ u2 ─ a3        (a2 regenerated after a1)
//         └ u3 ─ a4        (u2 edited into u3)
const tree = Object.fromEntries(
  [msg("u1", null), msg("a1", "u1", "assistant"), msg("a2", "u1", "assistant"), msg("u2", "a2"), msg("a3", "u2", "assistant"), msg("u3", "a2"), msg("a4", "u3", "assistant")].map((m) => [m.id, m]),
);

const index = indexChildren(tree);

describe("conversation tree", () => {
  it("walks the path from the root to a leaf", () => {
    expect(pathTo(tree, "a3").map((m) => m.id)).toEqual(["u1", "a2", "u2", "a3"]);
  });

  it("numbers siblings oldest first", () => {
    expect(siblingInfo(tree, index, "a2")).toEqual({ index: 1, ids: ["a1", "a2"] });
    expect(siblingInfo(tree, index, "u3")).toEqual({ index: 1, ids: ["u2", "u3"] });
  });

  it("lands on the newest branch below a sibling when switching", () => {
    expect(deepestLeaf(index, "a2")).toBe("a4");
    expect(deepestLeaf(index, "a1")).toBe("a1");
  });

  it("stops at a cycle instead of hanging", () => {
    const broken = { x: { ...msg("x", "y") }, y: { ...msg("y", "x") } };
    expect(pathTo(broken, "x").map((m) => m.id)).toEqual(["y", "x"]);
  });
});
