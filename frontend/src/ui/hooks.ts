import { useEffect, useLayoutEffect, useReducer } from "preact/hooks";

/** Re-render when an external store changes; read its current snapshot. */
export function useSnapshot<T>(store: { subscribe(listener: () => void): () => void; getSnapshot(): T }): T {
  const [, force] = useReducer((n: number) => n + 1, 0);
  useLayoutEffect(() => store.subscribe(() => force(undefined)), [store]);
  return store.getSnapshot();
}

/** Seconds left until an epoch-ms deadline, ticking; 0 when passed or null.
 *
 * Read from the clock at every render, not from state set in an effect: an effect runs after
 * the first paint, which would show a new deadline's notice as "retry now" (and enable Send)
 * for a frame. */
export function useCountdown(deadline: number | null): number {
  const [, tick] = useReducer((n: number) => n + 1, 0);
  useEffect(() => {
    if (!deadline) return;
    const timer = setInterval(() => {
      tick(undefined);
      if (Date.now() >= deadline) clearInterval(timer);
    }, 250);
    return () => clearInterval(timer);
  }, [deadline]);
  return deadline ? Math.max(0, Math.ceil((deadline - Date.now()) / 1000)) : 0;
}

/** Copy text; falls back to a hidden textarea where the Clipboard API is unavailable. */
export async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}
