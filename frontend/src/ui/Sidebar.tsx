import type { RefObject } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import type { ConversationSummary, User } from "../api/rest";
import type { ConversationList } from "../state/conversation-list";
import { Dialog } from "./Dialog";
import { useSnapshot } from "./hooks";
import { Icon } from "./icons";
import { navigate, onLinkClick } from "./router";

interface Props {
  list: ConversationList;
  user: User;
  activeId: string | null;
  searchRef: RefObject<HTMLInputElement | null>;
  onLogout(): void;
  onClose(): void;
  onDeleted(id: string): void;
}

type Pending = { kind: "rename" | "delete"; item: ConversationSummary } | null;

export function Sidebar({ list, user, activeId, searchRef, onLogout, onClose, onDeleted }: Props) {
  const state = useSnapshot(list);
  const [query, setQuery] = useState("");
  const [pending, setPending] = useState<Pending>(null);
  const [menuFor, setMenuFor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const sentinel = useRef<HTMLLIElement>(null);

  // Debounced search: one request after the user pauses typing.
  useEffect(() => {
    if (query === state.query) return;
    const timer = setTimeout(() => void list.reload({ query }), 250);
    return () => clearTimeout(timer);
  }, [query]);

  // Infinite scroll: load the next page when the end of the list comes into view.
  useEffect(() => {
    const target = sentinel.current;
    if (!target) return;
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) void list.loadMore();
    }, { rootMargin: "200px" });
    observer.observe(target);
    return () => observer.disconnect();
  }, [list, state.items.length, state.done]);

  async function run(action: () => Promise<void>) {
    setError(null);
    try {
      await action();
    } catch (caught) {
      setError((caught as Error).message);
    }
  }

  return (
    <nav class="sidebar" aria-label="Conversations">
      <div class="sidebar-top">
        <button
          type="button"
          class="primary new-chat"
          data-testid="new-chat"
          onClick={() => {
            navigate({ name: "chat", conversationId: null });
            onClose();
          }}
        >
          <Icon name="plus" /> New chat
        </button>
        <button type="button" class="icon-button close-drawer" aria-label="Close conversations" onClick={onClose}>
          <Icon name="close" />
        </button>
      </div>
      <div class="search">
        <label for="search" class="sr-only">
          Search conversations
        </label>
        <input
          id="search"
          ref={searchRef}
          data-testid="search"
          type="search"
          placeholder="Search"
          value={query}
          onInput={(e) => setQuery((e.target as HTMLInputElement).value)}
        />
      </div>
      <div class="list-tabs" role="group" aria-label="Which conversations">
        <button type="button" aria-pressed={!state.archived} onClick={() => void list.reload({ archived: false })}>
          Recent
        </button>
        <button type="button" aria-pressed={state.archived} onClick={() => void list.reload({ archived: true })}>
          Archived
        </button>
      </div>
      {error && (
        <p class="form-error" role="alert">
          {error}
        </p>
      )}
      <ul class="conversations">
        {state.items.map((item) => (
          <li key={item.id} data-testid="conversation-item" class={item.id === activeId ? "active" : ""}>
            <a
              href={`/c/${encodeURIComponent(item.id)}`}
              aria-current={item.id === activeId ? "page" : undefined}
              onClick={(e) => {
                onLinkClick(e, { name: "chat", conversationId: item.id });
                onClose();
              }}
            >
              {item.title || "Untitled"}
            </a>
            <button
              type="button"
              class="icon-button item-menu"
              aria-label={`Actions for ${item.title || "Untitled"}`}
              aria-haspopup="true"
              aria-expanded={menuFor === item.id}
              onClick={() => setMenuFor(menuFor === item.id ? null : item.id)}
            >
              <Icon name="more" />
            </button>
            {menuFor === item.id && (
              <div class="menu" role="group" aria-label="Conversation actions">
                <button type="button" onClick={() => { setMenuFor(null); setPending({ kind: "rename", item }); }}>
                  Rename
                </button>
                <button
                  type="button"
                  onClick={() => {
                    setMenuFor(null);
                    void run(() => list.setArchived(item.id, !state.archived));
                  }}
                >
                  {state.archived ? "Unarchive" : "Archive"}
                </button>
                <button type="button" class="danger" onClick={() => { setMenuFor(null); setPending({ kind: "delete", item }); }}>
                  Delete
                </button>
              </div>
            )}
          </li>
        ))}
        <li ref={sentinel} class="list-end" aria-hidden={state.done ? "true" : undefined}>
          {state.loading ? "Loading…" : state.done && !state.items.length ? (state.query ? "No matches." : "No conversations yet.") : ""}
        </li>
      </ul>
      <div class="sidebar-bottom">
        <a href="/usage" onClick={(e) => { onLinkClick(e, { name: "usage" }); onClose(); }}>
          Usage
        </a>
        <a href="/keys" data-testid="keys-link" onClick={(e) => { onLinkClick(e, { name: "keys" }); onClose(); }}>
          API keys
        </a>
        <span class="user-email" title={user.email}>
          {user.email}
        </span>
        <button type="button" data-testid="logout" onClick={onLogout}>
          Log out
        </button>
      </div>
      {pending?.kind === "rename" && (
        <RenameDialog
          item={pending.item}
          onClose={() => setPending(null)}
          onSave={(title) => run(() => list.rename(pending.item.id, title)).then(() => setPending(null))}
        />
      )}
      {pending?.kind === "delete" && (
        <Dialog title="Delete conversation?" onClose={() => setPending(null)}>
          <p>
            “{pending.item.title || "Untitled"}” will be deleted for good. This cannot be undone.
          </p>
          <div class="dialog-actions">
            <button type="button" onClick={() => setPending(null)}>
              Cancel
            </button>
            <button
              type="button"
              class="danger-solid"
              data-testid="confirm-delete"
              onClick={() =>
                run(async () => {
                  await list.remove(pending.item.id);
                  onDeleted(pending.item.id);
                }).then(() => setPending(null))
              }
            >
              Delete
            </button>
          </div>
        </Dialog>
      )}
    </nav>
  );
}

function RenameDialog({ item, onClose, onSave }: { item: ConversationSummary; onClose(): void; onSave(title: string): void }) {
  const [title, setTitle] = useState(item.title);
  return (
    <Dialog title="Rename conversation" onClose={onClose}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (title.trim()) onSave(title.trim());
        }}
      >
        <label for="rename-title">Title</label>
        <input id="rename-title" value={title} maxLength={200} autofocus onInput={(e) => setTitle((e.target as HTMLInputElement).value)} />
        <div class="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={!title.trim()}>
            Save
          </button>
        </div>
      </form>
    </Dialog>
  );
}
