// The open conversation: its message tree, the branch on screen and what the server said last.
// Framework-free; the UI reads immutable snapshots (`getSnapshot`) and calls the actions.
// Streaming text does not pass through here: the UI reads it from the GenerationStream and
// this store only records the final text once `generation.done` arrives.
import { type ApiMessage, type Conversation, conversations, messages as messageApi } from "../api/rest";
import type { ChatClient, ConversationUpdated, ServerMessage } from "../protocol";
import { FINAL_STATES, type MessageState, stateForError, stateForFinish } from "../protocol";
import { type ChatMessage, defaultLeaf, deepestLeaf, indexChildren, type MessageMap, siblingInfo } from "./tree";
import { readLocal, writeLocal } from "./local";
import { AUTO_MODEL } from "./models";

export type NoticeKind = "error" | "moderation" | "busy" | "rate_limited" | "quota" | "too_large";

export interface Notice {
  kind: NoticeKind;
  message: string;
  /** Epoch ms after which a retry makes sense (busy, rate_limited). */
  retryAt: number | null;
}

export interface ChatSnapshot {
  conversationId: string | null;
  title: string;
  /** The open conversation is archived (from the API, then from `conversation.updated`). */
  archived: boolean;
  messages: MessageMap;
  leafId: string | null;
  status: "empty" | "loading" | "ready" | "not_found" | "error";
  notice: Notice | null;
  /** A send or regenerate the server has not accepted yet. */
  awaitingRequestId: string | null;
  activeGenerationId: string | null;
  model: string | null;
  systemPrompt: string;
}

/** A `conversation.updated` with absent fields (servers before them) read as false. */
export interface ConversationChange {
  id: string;
  title: string;
  archived: boolean;
  deleted: boolean;
}

export interface ChatStoreEvents {
  /** A new conversation got its id (first accepted message). */
  created?(conversationId: string, title: string): void;
  /** An answer reached a final state: for the aria-live announcement. */
  finished?(message: ChatMessage): void;
  /** A conversation changed, here or elsewhere (another tab, another device): created, titled,
   * renamed, archived or unarchived, or deleted. */
  updated?(change: ConversationChange): void;
}

const EMPTY: ChatSnapshot = {
  conversationId: null,
  title: "New chat",
  archived: false,
  messages: {},
  leafId: null,
  status: "empty",
  notice: null,
  awaitingRequestId: null,
  activeGenerationId: null,
  model: null,
  systemPrompt: "",
};

const LIVE_STATES = new Set(["queued", "streaming"]);
const PENDING_PREFIX = "pending:";

function fromApi(m: ApiMessage): ChatMessage {
  return {
    id: m.id,
    parentId: m.parent_id,
    role: m.role,
    content: m.content ?? "",
    state: m.state,
    model: m.model,
    createdAt: m.created_at,
    generationId: m.generation_id ?? (m.role === "assistant" ? m.id : null),
    usage: m.usage ?? null,
    feedback: m.feedback ?? null,
  };
}

function systemPromptKey(conversationId: string | null): string {
  return `chat.system-prompt.${conversationId ?? "new"}`;
}

export class ChatStore {
  private snapshot: ChatSnapshot = { ...EMPTY, systemPrompt: readLocal(systemPromptKey(null)) };
  private readonly listeners = new Set<() => void>();
  private pendingSends = new Map<string, { content: string }>();
  private loadToken = 0;
  private promptTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly draftListeners = new Set<(text: string) => void>();

  constructor(
    private readonly client: ChatClient,
    private readonly events: ChatStoreEvents = {},
  ) {
    client.onMessage((message) => this.handle(message));
  }

  getSnapshot = (): ChatSnapshot => this.snapshot;

  /** A send was refused: its text is handed back so the composer can restore it. */
  onRestoreDraft(listener: (text: string) => void): () => void {
    this.draftListeners.add(listener);
    return () => this.draftListeners.delete(listener);
  }

  private restoreDraft(text: string): void {
    for (const listener of this.draftListeners) listener(text);
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  private set(patch: Partial<ChatSnapshot>): void {
    this.snapshot = { ...this.snapshot, ...patch };
    for (const listener of this.listeners) listener();
  }

  private setMessage(id: string, patch: Partial<ChatMessage>): void {
    const current = this.snapshot.messages[id];
    if (!current) return;
    this.set({ messages: { ...this.snapshot.messages, [id]: { ...current, ...patch } } });
  }

  // --- Navigation ----------------------------------------------------------------------------

  newChat(defaultModel: string | null): void {
    this.loadToken += 1;
    this.set({ ...EMPTY, model: defaultModel, systemPrompt: readLocal(systemPromptKey(null)) });
  }

  async open(conversationId: string): Promise<void> {
    if (conversationId === this.snapshot.conversationId && this.snapshot.status === "ready") return;
    const token = ++this.loadToken;
    this.set({ ...EMPTY, conversationId, status: "loading", title: "" });
    let conversation: Conversation;
    try {
      conversation = await conversations.get(conversationId);
    } catch (error) {
      if (token !== this.loadToken) return;
      const status = (error as { status?: number }).status;
      this.set({ status: status === 404 ? "not_found" : "error" });
      return;
    }
    if (token !== this.loadToken) return;
    this.applyConversation(conversation);
  }

  private applyConversation(conversation: Conversation): void {
    const messages: Record<string, ChatMessage> = {};
    let systemPrompt = conversation.system_prompt ?? "";
    for (const raw of conversation.messages ?? []) {
      const message = fromApi(raw);
      if (message.role === "system") {
        systemPrompt ||= message.content;
        continue;
      }
      messages[message.id] = message;
    }
    // A system message sits at the root of the tree; its children become roots on screen.
    for (const message of Object.values(messages)) {
      if (message.parentId && !messages[message.parentId]) message.parentId = null;
    }
    const leafId =
      conversation.current_leaf_id && messages[conversation.current_leaf_id]
        ? conversation.current_leaf_id
        : defaultLeaf(indexChildren(messages));
    let activeGenerationId: string | null = null;
    for (const message of Object.values(messages)) {
      if (message.role !== "assistant" || !LIVE_STATES.has(String(message.state)) || !message.generationId) continue;
      const raw = conversation.messages.find((m) => m.id === message.id);
      // Without the seq of the stored text we cannot resume after it: ask for everything.
      const known = typeof raw?.seq === "number" && raw.seq > 0;
      this.client.follow(message.generationId, {
        text: known ? message.content : "",
        lastSeq: known ? (raw?.seq as number) : 0,
        state: message.state as MessageState,
      });
      activeGenerationId = message.generationId;
    }
    this.set({
      conversationId: conversation.id,
      title: conversation.title || "Untitled",
      archived: Boolean(conversation.archived),
      messages,
      leafId,
      status: "ready",
      // Auto stays picked across conversations until the user picks a model.
      // A conversation started with Auto shows Auto: its turns are routed again.
      model:
        this.snapshot.model === AUTO_MODEL
          ? AUTO_MODEL
          : (conversation.model_choice ?? conversation.model ?? null),
      systemPrompt: systemPrompt || readLocal(systemPromptKey(conversation.id)),
      activeGenerationId,
    });
  }

  selectSibling(messageId: string, step: -1 | 1): void {
    const { messages } = this.snapshot;
    const index = indexChildren(messages);
    const info = siblingInfo(messages, index, messageId);
    const target = info.ids[info.index + step];
    if (!target) return;
    this.set({ leafId: deepestLeaf(index, target) });
  }

  setModel(model: string): void {
    this.set({ model });
  }

  setSystemPrompt(text: string): void {
    const { conversationId } = this.snapshot;
    writeLocal(systemPromptKey(conversationId), text);
    this.set({ systemPrompt: text });
    // Stored on the conversation too (after a pause in typing), so other devices see it.
    if (this.promptTimer) clearTimeout(this.promptTimer);
    if (conversationId) {
      this.promptTimer = setTimeout(() => {
        conversations.update(conversationId, { system_prompt: text }).catch(() => undefined);
      }, 800);
    }
  }

  dismissNotice(): void {
    this.set({ notice: null });
  }

  // --- Actions that talk to the server --------------------------------------------------------

  /** Send a message after the current leaf, or as a new branch under `parentId` (edit; null:
   * a new root, when the first message is edited). */
  send(content: string, options: { parentId?: string | null } = {}): void {
    const text = content.trim();
    if (!text || this.isBusy()) return;
    const { conversationId, leafId, model, systemPrompt } = this.snapshot;
    const parentId = options.parentId !== undefined ? options.parentId : leafId;
    let requestId: string;
    try {
      requestId = this.client.send({
        conversation_id: conversationId,
        // After the leaf on screen; an explicit null: a new first message (an edit).
        ...(conversationId && (parentId || options.parentId === null) ? { parent_id: parentId } : {}),
        content: text,
        ...(model ? { model } : {}),
        ...(systemPrompt.trim() ? { options: { system_prompt: systemPrompt } } : {}),
      });
    } catch (error) {
      this.set({ notice: { kind: "too_large", message: (error as Error).message, retryAt: null } });
      this.restoreDraft(content);
      return;
    }
    this.pendingSends.set(requestId, { content: text });
    // Shown at once as "sending"; replaced by the stored message when the server accepts it.
    const optimistic: ChatMessage = {
      id: PENDING_PREFIX + requestId,
      parentId: parentId ?? null,
      role: "user",
      content: text,
      state: "sending",
      createdAt: new Date().toISOString(),
    };
    this.set({
      messages: { ...this.snapshot.messages, [optimistic.id]: optimistic },
      leafId: optimistic.id,
      awaitingRequestId: requestId,
      notice: null,
    });
  }

  regenerate(assistantId: string): void {
    if (this.isBusy()) return;
    // "Auto" asks the router again; another model stays the conversation's.
    const requestId = this.client.regenerate(assistantId, this.snapshot.model === AUTO_MODEL ? AUTO_MODEL : undefined);
    this.set({ awaitingRequestId: requestId, notice: null });
  }

  stop(): void {
    const id = this.snapshot.activeGenerationId;
    if (id) this.client.stop(id);
  }

  async giveFeedback(messageId: string, rating: 1 | -1, comment: string): Promise<void> {
    await messageApi.feedback(messageId, rating, comment);
    this.setMessage(messageId, { feedback: { rating, comment } });
  }

  isBusy(): boolean {
    return Boolean(this.snapshot.awaitingRequestId || this.snapshot.activeGenerationId);
  }

  // --- Server messages ------------------------------------------------------------------------

  private handle(message: ServerMessage): void {
    switch (message.type) {
      case "chat.accepted":
        return this.onAccepted(message);
      case "generation.done":
      case "generation.error":
        return this.onFinished(message);
      case "moderation.blocked":
        if (message.request_id && this.ownsRequest(message.request_id)) {
          this.refuse(message.request_id, { kind: "moderation", message: message.message, retryAt: null });
        } else if (message.generation_id) {
          const target = this.messageForGeneration(message.generation_id);
          if (target) this.setMessage(target.id, { note: message.message });
        }
        return;
      case "error":
        if (message.request_id && this.ownsRequest(message.request_id)) {
          this.refuse(message.request_id, noticeFor(message.code, message.message, message.retry_after));
        } else if (!message.request_id && message.code !== "not_found") {
          this.set({ notice: noticeFor(message.code, message.message, message.retry_after) });
        }
        return;
      case "conversation.updated":
        return this.onConversationUpdated(message);
      default:
        return;
    }
  }

  private onConversationUpdated(message: ConversationUpdated): void {
    const change: ConversationChange = {
      id: message.conversation_id,
      title: message.title,
      archived: message.archived === true,
      deleted: message.deleted === true,
    };
    if (change.id === this.snapshot.conversationId) {
      if (change.deleted) {
        // Deleted (here or elsewhere): nothing is left to show or to answer in; as when a
        // deleted conversation is opened. A load still under way is dropped.
        this.loadToken += 1;
        this.set({ ...EMPTY, conversationId: change.id, title: "", status: "not_found", model: this.snapshot.model });
      } else {
        this.set({ title: change.title, archived: change.archived });
      }
    }
    this.events.updated?.(change);
  }

  private ownsRequest(requestId: string): boolean {
    return requestId === this.snapshot.awaitingRequestId || this.pendingSends.has(requestId);
  }

  private onAccepted(message: Extract<ServerMessage, { type: "chat.accepted" }>): void {
    const mine = this.ownsRequest(message.request_id);
    const isNew = mine && this.snapshot.conversationId === null;
    if (!mine && message.conversation_id !== this.snapshot.conversationId) return;
    const messages: Record<string, ChatMessage> = { ...this.snapshot.messages };
    delete messages[PENDING_PREFIX + message.request_id];
    const user = message.user_message;
    if (!messages[user.id]) {
      messages[user.id] = {
        id: user.id,
        parentId: user.parent_id && messages[user.parent_id] ? user.parent_id : null,
        role: "user",
        content: user.content,
        state: "complete",
        createdAt: user.created_at,
      };
    }
    messages[message.assistant_message_id] = {
      id: message.assistant_message_id,
      parentId: user.id,
      role: "assistant",
      content: "",
      state: "queued",
      createdAt: new Date(Math.max(Date.parse(user.created_at) || 0, Date.now())).toISOString(),
      generationId: message.generation_id,
      model: this.snapshot.model,
    };
    this.pendingSends.delete(message.request_id);
    const title = isNew ? titleFrom(user.content) : this.snapshot.title;
    if (isNew) {
      writeLocal(systemPromptKey(message.conversation_id), this.snapshot.systemPrompt);
      writeLocal(systemPromptKey(null), "");
    }
    this.set({
      conversationId: message.conversation_id,
      title,
      messages,
      leafId: message.assistant_message_id,
      status: "ready",
      awaitingRequestId: mine ? null : this.snapshot.awaitingRequestId,
      activeGenerationId: message.generation_id,
    });
    if (isNew) this.events.created?.(message.conversation_id, title);
  }

  private onFinished(message: Extract<ServerMessage, { type: "generation.done" | "generation.error" }>): void {
    const target = this.messageForGeneration(message.generation_id);
    if (!target) return;
    const done = message.type === "generation.done";
    const state = done ? stateForFinish(message.finish_reason) : stateForError(message.code);
    this.setMessage(target.id, {
      content: message.text,
      state,
      usage: done ? message.usage : target.usage,
      note: done ? target.note : message.message,
      ...(done && message.model ? { model: message.model } : {}),
    });
    if (this.snapshot.activeGenerationId === message.generation_id) this.set({ activeGenerationId: null });
    const finished = this.snapshot.messages[target.id];
    if (finished && FINAL_STATES.has(finished.state as MessageState)) this.events.finished?.(finished);
  }

  private messageForGeneration(generationId: string): ChatMessage | undefined {
    return Object.values(this.snapshot.messages).find((m) => m.generationId === generationId);
  }

  private refuse(requestId: string, notice: Notice): void {
    const pending = this.pendingSends.get(requestId);
    this.pendingSends.delete(requestId);
    const messages: Record<string, ChatMessage> = { ...this.snapshot.messages };
    const optimistic = messages[PENDING_PREFIX + requestId];
    delete messages[PENDING_PREFIX + requestId];
    this.set({
      messages,
      leafId: optimistic && this.snapshot.leafId === optimistic.id ? optimistic.parentId : this.snapshot.leafId,
      awaitingRequestId: this.snapshot.awaitingRequestId === requestId ? null : this.snapshot.awaitingRequestId,
      notice,
    });
    if (pending) this.restoreDraft(pending.content);
  }
}

function titleFrom(content: string): string {
  const line = content.split(/\s+/).join(" ").trim();
  return line.length <= 60 ? line : `${line.slice(0, 59).trimEnd()}…`;
}

export function noticeFor(code: string, message: string, retryAfter?: number | null): Notice {
  const retryAt = retryAfter ? Date.now() + retryAfter * 1000 : null;
  switch (code) {
    case "busy":
      return { kind: "busy", message: message || "The servers are busy.", retryAt: retryAt ?? Date.now() + 5000 };
    case "rate_limited":
      return { kind: "rate_limited", message: message || "You are sending messages too fast.", retryAt };
    case "quota_exceeded":
      return { kind: "quota", message, retryAt };
    case "too_large":
      return { kind: "too_large", message, retryAt: null };
    default:
      return { kind: "error", message, retryAt };
  }
}
