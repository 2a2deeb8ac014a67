import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";
import type { ModelInfo } from "../api/rest";
import type { ChatClient, ConnectionStatus } from "../protocol";
import type { ChatStore, Notice } from "../state/chat-store";
import { AUTO_MODEL, allowedModel, offersAuto } from "../state/models";
import { type ChatMessage, indexChildren, pathTo, siblingInfo } from "../state/tree";
import { Composer } from "./Composer";
import { ConnectionBanner } from "./ConnectionBanner";
import { copyText, useCountdown, useSnapshot } from "./hooks";
import { Icon } from "./icons";
import { type MessageActions, MessageItem } from "./MessageItem";
import { onLinkClick } from "./router";

interface Props {
  store: ChatStore;
  client: ChatClient;
  status: ConnectionStatus;
  models: ModelInfo[] | null; // null: still loading
  onChooseModel(name: string): void;
  onMenu(): void;
}

export function ChatView({ store, client, status, models, onChooseModel, onMenu }: Props) {
  const chat = useSnapshot(store);
  const [draft, setDraft] = useState("");
  const [editingId, setEditingId] = useState<string | null>(null);
  const [showSystem, setShowSystem] = useState(false);
  const scroller = useRef<HTMLDivElement>(null);
  const composerRef = useRef<HTMLTextAreaElement>(null);
  const stickToBottom = useRef(true);
  const draftRef = useRef(draft);
  draftRef.current = draft;

  useEffect(
    () =>
      store.onRestoreDraft((text) => {
        if (!draftRef.current.trim()) setDraft(text);
      }),
    [store],
  );

  // The path on screen and each message's siblings, computed once per change of the tree.
  const index = useMemo(() => indexChildren(chat.messages), [chat.messages]);
  const path = useMemo(() => pathTo(chat.messages, chat.leafId), [chat.messages, chat.leafId]);

  const scrollToBottom = useCallback(() => {
    const el = scroller.current;
    if (el && stickToBottom.current) el.scrollTop = el.scrollHeight;
  }, []);

  useLayoutEffect(scrollToBottom, [path.length, chat.leafId, chat.status]);
  useEffect(() => {
    stickToBottom.current = true;
    setEditingId(null);
    requestAnimationFrame(scrollToBottom);
    if (chat.status !== "loading") composerRef.current?.focus();
  }, [chat.conversationId]);

  const actions = useMemo<MessageActions>(
    () => ({
      regenerate: (id) => store.regenerate(id),
      selectSibling: (id, step) => store.selectSibling(id, step),
      startEdit: (id) => setEditingId(id),
      cancelEdit: () => {
        setEditingId(null);
        composerRef.current?.focus();
      },
      saveEdit: (message: ChatMessage, text: string) => {
        setEditingId(null);
        store.send(text, { parentId: message.parentId });
      },
      feedback: (id, rating, comment) => store.giveFeedback(id, rating, comment),
      onStreamFrame: scrollToBottom,
    }),
    [store],
  );

  const busy = Boolean(chat.awaitingRequestId || chat.activeGenerationId);
  const generating = Boolean(chat.activeGenerationId);
  const retryIn = useCountdown(chat.notice?.retryAt ?? null);
  const canSend = !busy && draft.trim().length > 0 && retryIn === 0 && status.state !== "unauthorized";

  // Esc stops the answer from anywhere on the page.
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.key === "Escape" && generating && !document.querySelector("dialog[open]")) {
        event.preventDefault();
        store.stop();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [generating, store]);

  // Code blocks' copy buttons come from sanitised HTML, so they are handled by delegation.
  function onThreadClick(event: MouseEvent) {
    const button = (event.target as HTMLElement).closest?.("button.code-copy");
    if (!button) return;
    const code = button.closest(".code-block")?.querySelector("code")?.textContent ?? "";
    void copyText(code).then((ok) => {
      if (!ok) return;
      button.textContent = "Copied";
      setTimeout(() => (button.textContent = "Copy"), 1500);
    });
  }

  function send() {
    if (!canSend) return;
    stickToBottom.current = true;
    store.send(draft);
    setDraft("");
  }

  function editLast() {
    const lastUser = [...path].reverse().find((m) => m.role === "user" && m.state !== "sending");
    if (lastUser && !busy) setEditingId(lastUser.id);
  }

  const modelItems = models ?? [];
  const modelChoice = allowedModel(modelItems, chat.model) ?? "";
  // A conversation opened on a model the plan does not include asks for an allowed one next.
  useEffect(() => {
    if (modelItems.length && modelChoice && chat.model !== modelChoice) store.setModel(modelChoice);
  }, [models, chat.model, modelChoice]);

  return (
    <main class="chat" aria-label="Chat">
      <header class="chat-header">
        <button type="button" class="icon-button menu-button" aria-label="Open conversations" onClick={onMenu}>
          <Icon name="menu" size={22} />
        </button>
        <h1 class="chat-title" title={chat.title}>
          {chat.status === "loading" ? "Loading…" : chat.title || "New chat"}
        </h1>
        <label class="sr-only" for="model-picker">
          Model
        </label>
        <select
          id="model-picker"
          data-testid="model-picker"
          value={modelChoice}
          disabled={!modelItems.length}
          onChange={(e) => onChooseModel((e.target as HTMLSelectElement).value)}
        >
          {models === null && <option value={modelChoice}>Loading models…</option>}
          {models !== null && !modelItems.length && <option value="">No models</option>}
          {offersAuto(modelItems) && (
            <option value={AUTO_MODEL} title="The server picks a model for each message">
              Auto
            </option>
          )}
          {modelItems.map((m) => (
            <option key={m.name} value={m.name} title={m.description}>
              {m.display_name || m.name}
            </option>
          ))}
        </select>
        <button
          type="button"
          class={`system-toggle${chat.systemPrompt.trim() ? " has-prompt" : ""}`}
          aria-expanded={showSystem}
          aria-controls="system-panel"
          aria-label={chat.systemPrompt.trim() ? "System prompt (set)" : "System prompt"}
          title="System prompt for this conversation"
          onClick={() => setShowSystem(!showSystem)}
        >
          <Icon name="sliders" />
          <span class="label-text">System prompt</span>
        </button>
      </header>
      <ConnectionBanner status={status} onRetry={() => client.reconnectNow()} />
      {showSystem && (
        <div class="system-panel" id="system-panel">
          <label for="system-prompt">System prompt for this conversation</label>
          <textarea
            id="system-prompt"
            data-testid="system-prompt"
            rows={3}
            placeholder="e.g. You are a concise assistant that answers in French."
            value={chat.systemPrompt}
            onInput={(e) => store.setSystemPrompt((e.target as HTMLTextAreaElement).value)}
          />
          <p class="hint">Sent with each message in this conversation.</p>
        </div>
      )}
      <div
        class="thread-scroll"
        ref={scroller}
        onScroll={() => {
          const el = scroller.current;
          if (el) stickToBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
        }}
      >
        <div class="thread" onClick={onThreadClick}>
          {chat.status === "not_found" && <p class="empty">This conversation does not exist or was deleted.</p>}
          {chat.status === "error" && <p class="empty">The conversation could not be loaded. Check your connection and reload.</p>}
          {chat.status === "empty" && !path.length && (
            <div class="empty welcome">
              <h2>How can I help?</h2>
              <p>Ask anything. Enter sends, Shift+Enter adds a line, Esc stops an answer, ↑ edits your last message.</p>
            </div>
          )}
          {path.map((message) => {
            const siblings = siblingInfo(chat.messages, index, message.id);
            const stream = message.role === "assistant" && message.generationId ? client.stream(message.generationId) : undefined;
            return (
              <MessageItem
                key={message.id}
                message={message}
                siblingIndex={siblings.index}
                siblingCount={siblings.ids.length}
                stream={stream}
                busy={busy}
                editing={editingId === message.id}
                actions={actions}
              />
            );
          })}
        </div>
      </div>
      {chat.notice && <NoticeBar notice={chat.notice} retryIn={retryIn} onDismiss={() => store.dismissNotice()} />}
      <Composer
        value={draft}
        onChange={setDraft}
        onSend={send}
        onStop={() => store.stop()}
        onEditLast={editLast}
        generating={generating}
        canSend={canSend}
        sendLabel={retryIn > 0 ? `Retry in ${retryIn} s` : "Send"}
        textareaRef={composerRef}
      />
    </main>
  );
}

const NOTICE_TITLE: Record<Notice["kind"], string> = {
  error: "Something went wrong",
  moderation: "Message not sent",
  busy: "The servers are busy",
  rate_limited: "Slow down a little",
  quota: "Quota reached",
  too_large: "Message too long",
};

function NoticeBar({ notice, retryIn, onDismiss }: { notice: Notice; retryIn: number; onDismiss(): void }) {
  return (
    <div class={`notice notice-${notice.kind}`} role="alert" data-testid="notice" data-kind={notice.kind}>
      <div>
        <strong>{NOTICE_TITLE[notice.kind]}</strong>
        <p>{notice.message}</p>
        {(notice.kind === "busy" || notice.kind === "rate_limited") && (
          <p class="hint" data-testid="retry-hint">
            {retryIn > 0 ? `You can retry in ${retryIn} s. Your message is back in the box.` : "You can retry now: press Enter."}
          </p>
        )}
        {notice.kind === "quota" && (
          <p class="hint">
            <a href="/usage" onClick={(e) => onLinkClick(e, { name: "usage" })}>
              See your usage and quota
            </a>
          </p>
        )}
      </div>
      <button type="button" class="icon-button" aria-label="Dismiss" onClick={onDismiss}>
        <Icon name="close" />
      </button>
    </div>
  );
}
