import { useEffect, useLayoutEffect, useReducer, useState } from "preact/hooks";

/** Re-render when an external store changes; read its current snapshot. */
export function useSnapshot<T>(store: { subscribe(listener: () => void): () => void; getSnapshot(): T }): T {
  const [, force] = useReducer((n: number) => n + 1, 0);
  useLayoutEffect(() => store.subscribe(() => force(undefined)), [store]);
  return store.getSnapshot();
}

/** Seconds left until an epoch-ms deadline, ticking once a second; 0 when passed or null. */
export function useCountdown(deadline: number | null): number {
  const left = () => (deadline ? Math.max(0, Math.ceil((deadline - Date.now()) / 1000)) : 0);
  const [seconds, setSeconds] = useState(left);
  useEffect(() => {
    setSeconds(left());
    if (!deadline) return;
    const timer = setInterval(() => {
      const value = left();
      setSeconds(value);
      if (value === 0) clearInterval(timer);
    }, 250);
    return () => clearInterval(timer);
  }, [deadline]);
  return seconds;
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
