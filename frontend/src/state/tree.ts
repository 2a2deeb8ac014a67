// The conversation is a tree: edits and regenerations add siblings under the same parent. The
// screen shows one path, from the root to a leaf; these functions find it and the siblings.
import type { MessageState } from "../protocol";
import type { Feedback } from "../api/rest";

export interface ChatMessage {
  id: string;
  parentId: string | null;
  role: "user" | "assistant" | "system";
  content: string;
  state: MessageState | string;
  model?: string | null;
  createdAt: string;
  generationId?: string | null;
  usage?: { prompt_tokens: number; completion_tokens: number } | null;
  feedback?: Feedback | null;
  /** A note shown under the message: moderation explanation, error message. */
  note?: string | null;
}

export type MessageMap = Readonly<Record<string, ChatMessage>>;

export type ChildIndex = ReadonlyMap<string | null, ChatMessage[]>;

/** Children per parent (null: roots), oldest first so sibling numbers stay stable. One pass. */
export function indexChildren(messages: MessageMap): ChildIndex {
  const index = new Map<string | null, ChatMessage[]>();
  for (const message of Object.values(messages)) {
    const list = index.get(message.parentId);
    if (list) list.push(message);
    else index.set(message.parentId, [message]);
  }
  for (const list of index.values()) list.sort(byCreated);
  return index;
}

// Server timestamps and the client's own (for a message it just added) differ in format, so
// they are compared as instants, not as strings.
function byCreated(a: ChatMessage, b: ChatMessage): number {
  const ta = Date.parse(a.createdAt) || 0;
  const tb = Date.parse(b.createdAt) || 0;
  return ta - tb || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** The path root → leaf. A broken chain (unknown parent) ends the walk instead of looping. */
export function pathTo(messages: MessageMap, leafId: string | null): ChatMessage[] {
  const path: ChatMessage[] = [];
  const seen = new Set<string>();
  let current = leafId ? messages[leafId] : undefined;
  while (current && !seen.has(current.id)) {
    seen.add(current.id);
    path.push(current);
    current = current.parentId ? messages[current.parentId] : undefined;
  }
  return path.reverse();
}

/** Follow the newest child down from a message: where the user lands on switching branch. */
export function deepestLeaf(index: ChildIndex, id: string): string {
  let leaf = id;
  const seen = new Set<string>();
  for (;;) {
    seen.add(leaf);
    const newest = index.get(leaf)?.at(-1);
    if (!newest || seen.has(newest.id)) return leaf;
    leaf = newest.id;
  }
}

/** Where a message stands among its siblings: index (0-based) and the sibling ids. */
export function siblingInfo(
  messages: MessageMap,
  index: ChildIndex,
  id: string,
): { index: number; ids: string[] } {
  const message = messages[id];
  if (!message) return { index: 0, ids: [id] };
  const ids = (index.get(message.parentId) ?? [])
    .filter((m) => m.role === message.role)
    .map((m) => m.id);
  return { index: Math.max(0, ids.indexOf(id)), ids };
}

/** The leaf to show when none is known: the newest message's deepest branch from the first root. */
export function defaultLeaf(index: ChildIndex): string | null {
  const root = index.get(null)?.at(-1);
  return root ? deepestLeaf(index, root.id) : null;
}
