import { useEffect, useRef } from "preact/hooks";
import { renderMarkdown } from "../markdown/render";
import type { GenerationStream } from "../protocol";

interface Props {
  stream: GenerationStream;
  /** Text known before the first delta (the stored checkpoint after a reload). */
  fallback: string;
  onFrame?(): void;
}

declare global {
  interface Window {
    __chatPerf?: { renders: number[] };
  }
}

/**
 * The body of an answer that is still streaming. Deltas only mark it dirty; the DOM is written
 * at most once per animation frame, and only this message's Markdown is parsed, never the rest
 * of the conversation. Preact does not re-render for a delta at all.
 */
export function StreamingBody({ stream, fallback, onFrame }: Props) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    let frame = 0;
    let shown: string | null = null;
    const paint = () => {
      frame = 0;
      const text = stream.text || fallback;
      if (text === shown || !ref.current) return;
      const started = performance.now();
      ref.current.innerHTML = renderMarkdown(text, { streaming: true });
      shown = text;
      const perf = window.__chatPerf;
      if (perf) perf.renders.push(performance.now() - started);
      onFrame?.();
    };
    paint();
    const unsubscribe = stream.subscribe(() => {
      if (!frame) frame = requestAnimationFrame(paint);
    });
    return () => {
      unsubscribe();
      if (frame) cancelAnimationFrame(frame);
    };
  }, [stream, fallback]);
  return <div class="markdown streaming-body" ref={ref} />;
}
