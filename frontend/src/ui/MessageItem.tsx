import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { renderMarkdown } from "../markdown/render";
import type { GenerationStream } from "../protocol";
import type { ChatMessage } from "../state/tree";
import { copyText } from "./hooks";
import { Icon } from "./icons";
import { memo } from "./memo";
import { StreamingBody } from "./StreamingBody";

export interface MessageActions {
  regenerate(id: string): void;
  selectSibling(id: string, step: -1 | 1): void;
  startEdit(id: string): void;
  cancelEdit(): void;
  saveEdit(message: ChatMessage, text: string): void;
  feedback(id: string, rating: 1 | -1, comment: string): Promise<void>;
  onStreamFrame(): void;
}

interface Props {
  message: ChatMessage;
  siblingIndex: number;
  siblingCount: number;
  stream: GenerationStream | undefined;
  busy: boolean;
  editing: boolean;
  actions: MessageActions;
}

const STATE_LABEL: Record<string, string> = {
  stopped: "Stopped",
  interrupted: "Interrupted — the answer could not be finished. You can regenerate it.",
  failed: "Failed — something went wrong while answering. You can regenerate it.",
};

/** Follow a live stream's state and queue position (not its text: StreamingBody does that). */
function useStreamMeta(stream: GenerationStream | undefined) {
  const read = () => (stream ? { state: stream.state, position: stream.position, note: stream.moderationMessage ?? stream.errorMessage } : null);
  const [meta, setMeta] = useState(read);
  useEffect(() => {
    setMeta(read());
    if (!stream) return;
    return stream.subscribe((s) => {
      setMeta((old) =>
        old && old.state === s.state && old.position === s.position && old.note === (s.moderationMessage ?? s.errorMessage)
          ? old
          : { state: s.state, position: s.position, note: s.moderationMessage ?? s.errorMessage },
      );
    });
  }, [stream]);
  return meta;
}

function MessageView({ message, siblingIndex, siblingCount, stream, busy, editing, actions }: Props) {
  const meta = useStreamMeta(stream);
  const final = ["complete", "stopped", "interrupted", "failed", "moderated"];
  // The store's state wins once it is final (done reconciled); before that, the stream's.
  const state = final.includes(String(message.state)) || !meta ? String(message.state) : meta.state;
  const live = message.role === "assistant" && (state === "queued" || state === "streaming");
  const [copied, setCopied] = useState(false);
  const isUser = message.role === "user";
  const note = message.note ?? (live ? null : meta?.note) ?? null;

  async function copy() {
    if (await copyText(stream && live ? stream.text : message.content)) {
      setCopied(true);
      setTimeout(() => setCopied(false), 1500);
    }
  }

  return (
    <article
      class={`message ${message.role}`}
      data-testid="message"
      data-role={message.role}
      data-state={state}
      data-id={message.id}
      aria-busy={live ? "true" : undefined}
      aria-label={isUser ? "You said" : "Assistant said"}
    >
      {editing ? (
        <EditBox message={message} actions={actions} />
      ) : (
        <div class="bubble">
          {live && stream ? (
            <>
              {state === "queued" && !stream.text && !message.content && <QueueLine position={meta?.position ?? null} />}
              <StreamingBody stream={stream} fallback={message.content} onFrame={actions.onStreamFrame} />
            </>
          ) : isUser ? (
            <div class="plain">{message.content}</div>
          ) : (
            // Sanitised by renderMarkdown (DOMPurify); cached per text, so unchanged
            // messages are not parsed again.
            <div class="markdown" dangerouslySetInnerHTML={{ __html: renderMarkdown(message.content) }} />
          )}
          {state === "moderated" && (
            <p class="note moderation" role="note">
              {note ?? "This answer was withheld because it broke the content rules."}
            </p>
          )}
          {state !== "moderated" && STATE_LABEL[state] && (
            <p class={`note state-${state}`} role="note">
              {STATE_LABEL[state]}
              {note && state !== "stopped" ? ` ${note}` : ""}
            </p>
          )}
        </div>
      )}
      {!editing && message.state !== "sending" && (
        <div class="message-actions">
          {siblingCount > 1 && (
            <span class="siblings">
              <button
                type="button"
                class="icon-button"
                data-testid="sibling-prev"
                aria-label="Previous version"
                disabled={siblingIndex === 0}
                onClick={() => actions.selectSibling(message.id, -1)}
              >
                <Icon name="prev" size={16} />
              </button>
              <span class="sibling-count" aria-label={`Version ${siblingIndex + 1} of ${siblingCount}`}>
                {siblingIndex + 1}/{siblingCount}
              </span>
              <button
                type="button"
                class="icon-button"
                data-testid="sibling-next"
                aria-label="Next version"
                disabled={siblingIndex === siblingCount - 1}
                onClick={() => actions.selectSibling(message.id, 1)}
              >
                <Icon name="next" size={16} />
              </button>
            </span>
          )}
          <button type="button" class="icon-button" aria-label={copied ? "Copied" : "Copy message"} title="Copy" onClick={copy}>
            <Icon name={copied ? "check" : "copy"} />
          </button>
          {isUser && (
            <button type="button" class="icon-button" data-testid="edit" aria-label="Edit message" title="Edit" disabled={busy} onClick={() => actions.startEdit(message.id)}>
              <Icon name="edit" />
            </button>
          )}
          {!isUser && !live && (
            <>
              <button
                type="button"
                class="icon-button"
                data-testid="regenerate"
                aria-label="Regenerate answer"
                title="Regenerate"
                disabled={busy}
                onClick={() => actions.regenerate(message.id)}
              >
                <Icon name="regenerate" />
              </button>
              <Feedback message={message} actions={actions} />
            </>
          )}
        </div>
      )}
    </article>
  );
}

export const MessageItem = memo(MessageView);

function QueueLine({ position }: { position: number | null }) {
  const text =
    position && position > 0
      ? `Waiting in line: ${position} ${position === 1 ? "request" : "requests"} ahead of you…`
      : "Thinking…";
  return (
    <p class="queue-line" data-testid="queue-position">
      <span class="typing" aria-hidden="true">
        <i />
        <i />
        <i />
      </span>{" "}
      {text}
    </p>
  );
}

function EditBox({ message, actions }: { message: ChatMessage; actions: MessageActions }) {
  const [text, setText] = useState(message.content);
  const area = useRef<HTMLTextAreaElement>(null);
  // Focus with the caret at the end, so ↑ then typing continues the message. A layout effect:
  // it runs before the browser handles any input, so it can never move the caret in the
  // middle of what the user (or a test) is typing; a passive effect ran after paint and once
  // put the caret after a selection that was about to be replaced, appending the new text.
  useLayoutEffect(() => {
    const el = area.current;
    if (!el) return;
    el.focus();
    el.setSelectionRange(el.value.length, el.value.length);
  }, []);
  return (
    <form
      class="edit-box"
      onSubmit={(e) => {
        e.preventDefault();
        if (text.trim()) actions.saveEdit(message, text);
      }}
    >
      <label class="sr-only" for={`edit-${message.id}`}>
        Edit your message
      </label>
      <textarea
        id={`edit-${message.id}`}
        ref={area}
        data-testid="edit-input"
        value={text}
        rows={Math.min(10, text.split("\n").length + 1)}
        onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
        onKeyDown={(e) => {
          if (e.key === "Escape") {
            e.stopPropagation();
            actions.cancelEdit();
          } else if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
            e.preventDefault();
            if (text.trim()) actions.saveEdit(message, text);
          }
        }}
      />
      <div class="edit-actions">
        <button type="button" onClick={actions.cancelEdit}>
          Cancel
        </button>
        <button type="submit" class="primary" data-testid="edit-save" disabled={!text.trim()}>
          Send
        </button>
      </div>
    </form>
  );
}

function Feedback({ message, actions }: { message: ChatMessage; actions: MessageActions }) {
  const rating = message.feedback?.rating ?? 0;
  const [asking, setAsking] = useState(false);
  const [comment, setComment] = useState(message.feedback?.comment ?? "");
  const [error, setError] = useState<string | null>(null);

  async function rate(value: 1 | -1, text = "") {
    setError(null);
    try {
      await actions.feedback(message.id, value, text);
      setAsking(!text);
    } catch (caught) {
      setError((caught as Error).message);
    }
  }

  return (
    <>
      <button type="button" class="icon-button" aria-label="Good answer" aria-pressed={rating === 1} title="Good answer" onClick={() => rate(1)}>
        <Icon name="up" />
      </button>
      <button type="button" class="icon-button" aria-label="Bad answer" aria-pressed={rating === -1} title="Bad answer" onClick={() => rate(-1)}>
        <Icon name="down" />
      </button>
      {asking && rating !== 0 && (
        <form
          class="feedback-form"
          onSubmit={(e) => {
            e.preventDefault();
            void rate(rating as 1 | -1, comment.trim());
          }}
        >
          <label for={`fb-${message.id}`}>Thanks! Add a comment (optional)</label>
          <input id={`fb-${message.id}`} value={comment} maxLength={2000} onInput={(e) => setComment((e.target as HTMLInputElement).value)} />
          <button type="submit" disabled={!comment.trim()}>
            Send feedback
          </button>
          <button type="button" onClick={() => setAsking(false)}>
            Close
          </button>
        </form>
      )}
      {error && (
        <span class="field-error" role="alert">
          {error}
        </span>
      )}
    </>
  );
}
