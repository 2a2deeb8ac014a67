import type { RefObject } from "preact";
import { useLayoutEffect } from "preact/hooks";
import { Icon } from "./icons";

interface Props {
  value: string;
  onChange(value: string): void;
  onSend(): void;
  onStop(): void;
  onEditLast(): void;
  generating: boolean;
  canSend: boolean;
  sendLabel: string;
  textareaRef: RefObject<HTMLTextAreaElement | null>;
}

export function Composer({ value, onChange, onSend, onStop, onEditLast, generating, canSend, sendLabel, textareaRef }: Props) {
  // Grow with the text up to a cap, then scroll inside.
  useLayoutEffect(() => {
    const area = textareaRef.current;
    if (!area) return;
    area.style.height = "auto";
    area.style.height = `${Math.min(area.scrollHeight, 240)}px`;
  }, [value]);

  return (
    <form
      class="composer"
      onSubmit={(e) => {
        e.preventDefault();
        if (canSend) onSend();
      }}
    >
      <label for="composer" class="sr-only">
        Message
      </label>
      <textarea
        id="composer"
        ref={textareaRef}
        data-testid="composer"
        rows={1}
        placeholder="Message the assistant…"
        value={value}
        aria-keyshortcuts="Enter Shift+Enter Escape ArrowUp"
        onInput={(e) => onChange((e.target as HTMLTextAreaElement).value)}
        onKeyDown={(e) => {
          if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
            e.preventDefault();
            if (canSend) onSend();
          } else if (e.key === "ArrowUp" && !value) {
            e.preventDefault();
            onEditLast();
          }
        }}
      />
      {generating ? (
        <button key="stop" type="button" class="stop" data-testid="stop" aria-label="Stop generating (Esc)" onClick={onStop}>
          <Icon name="stop" /> Stop
        </button>
      ) : (
        <button key="send" type="submit" class="primary send" data-testid="send" disabled={!canSend} aria-label={sendLabel}>
          {sendLabel === "Send" ? <Icon name="send" size={20} /> : sendLabel}
        </button>
      )}
    </form>
  );
}
