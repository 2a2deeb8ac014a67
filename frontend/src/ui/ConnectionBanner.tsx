import type { ConnectionStatus } from "../protocol";
import { useCountdown } from "./hooks";

interface Props {
  status: ConnectionStatus;
  onRetry(): void;
}

export function ConnectionBanner({ status, onRetry }: Props) {
  const seconds = useCountdown(status.state === "reconnecting" ? status.retryAt : null);
  const offline = typeof navigator !== "undefined" && navigator.onLine === false;
  let text: string;
  switch (status.state) {
    case "open":
      text = "Connected";
      break;
    case "idle":
    case "connecting":
      text = "Connecting…";
      break;
    case "reconnecting":
      text = offline
        ? "You are offline. Reconnecting when the network is back…"
        : seconds > 0
          ? `Connection lost. Reconnecting in ${seconds} s…`
          : "Connection lost. Reconnecting…";
      break;
    case "unauthorized":
      text = "Signed out. Please log in again.";
      break;
    case "forbidden":
      text = "This page's address is not allowed to connect. Open the app from its usual address.";
      break;
    default:
      text = "Disconnected.";
  }
  return (
    <div class="connection-banner" data-testid="connection-banner" data-state={status.state} role="status">
      <span class="dot" aria-hidden="true" />
      <span class="connection-text">{text}</span>
      {status.state === "reconnecting" && (
        <button type="button" class="link-button" onClick={onRetry}>
          Retry now
        </button>
      )}
    </div>
  );
}
