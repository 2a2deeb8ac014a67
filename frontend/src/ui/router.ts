import { useEffect, useState } from "preact/hooks";

export type Route =
  | { name: "chat"; conversationId: string | null }
  | { name: "login" }
  | { name: "register" }
  | { name: "usage" }
  | { name: "keys" };

export function parseRoute(pathname: string): Route {
  const conversation = pathname.match(/^\/c\/([^/]+)\/?$/);
  if (conversation) return { name: "chat", conversationId: decodeURIComponent(conversation[1]) };
  if (pathname.startsWith("/login")) return { name: "login" };
  if (pathname.startsWith("/register")) return { name: "register" };
  if (pathname.startsWith("/usage")) return { name: "usage" };
  if (pathname.startsWith("/keys")) return { name: "keys" };
  return { name: "chat", conversationId: null };
}

export function pathFor(route: Route): string {
  switch (route.name) {
    case "chat":
      return route.conversationId ? `/c/${encodeURIComponent(route.conversationId)}` : "/";
    default:
      return `/${route.name}`;
  }
}

const listeners = new Set<() => void>();
window.addEventListener("popstate", () => listeners.forEach((l) => l()));

export function navigate(route: Route, { replace = false } = {}): void {
  const path = pathFor(route);
  if (path !== location.pathname) {
    if (replace) history.replaceState(null, "", path);
    else history.pushState(null, "", path);
  }
  listeners.forEach((l) => l());
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.pathname));
  useEffect(() => {
    const update = () => setRoute(parseRoute(location.pathname));
    listeners.add(update);
    return () => listeners.delete(update);
  }, []);
  return route;
}

/** A same-app link: plain <a href> for middle-click and screen readers, no page load on click. */
export function onLinkClick(event: MouseEvent, route: Route): void {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  navigate(route);
}
