import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { auth, type ModelInfo, models as modelApi, UNAUTHORIZED_EVENT, type User } from "../api/rest";
import { ChatClient } from "../protocol";
import { ChatStore } from "../state/chat-store";
import { ConversationList } from "../state/conversation-list";
import type { ChatMessage } from "../state/tree";
import { ChatView } from "./ChatView";
import { useSnapshot } from "./hooks";
import { navigate, type Route } from "./router";
import { Sidebar } from "./Sidebar";
import { KeysView } from "./KeysView";
import { UsageView } from "./UsageView";
import { readLocal, writeLocal } from "../state/local";
import { allowedModel } from "../state/models";

interface Props {
  user: User;
  route: Route;
  onSignedOut(): void;
}

const MODEL_KEY = "chat.model";
const MODELS_KEY = "chat.models";

function cachedModels(): ModelInfo[] | null {
  try {
    const list: unknown = JSON.parse(readLocal(MODELS_KEY) || "null");
    return Array.isArray(list) ? (list as ModelInfo[]) : null;
  } catch {
    return null;
  }
}

function announcementFor(message: ChatMessage): string {
  const preview = message.content.replace(/\s+/g, " ").trim().slice(0, 200);
  switch (message.state) {
    case "stopped":
      return `Answer stopped. ${preview}`;
    case "moderated":
      return `Answer withheld by moderation. ${message.note ?? ""}`;
    case "interrupted":
    case "failed":
      return `The answer could not be completed. ${message.note ?? ""}`;
    default:
      return `Answer complete. ${preview}`;
  }
}

export function Shell({ user, route, onSignedOut }: Props) {
  const [announcement, setAnnouncement] = useState("");
  const [drawerOpen, setDrawerOpen] = useState(false);
  // The last list seen, until the server answers (a reload shows the picker at once); null:
  // never loaded on this browser.
  const [modelList, setModelList] = useState<ModelInfo[] | null>(cachedModels);
  const searchRef = useRef<HTMLInputElement>(null);

  const { client, store, list } = useMemo(() => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const client = new ChatClient({ url: `${scheme}://${location.host}/ws/chat/` });
    const list = new ConversationList();
    const store = new ChatStore(client, {
      created: (id, title) => {
        list.bump({ id, title });
        navigate({ name: "chat", conversationId: id }, { replace: true });
      },
      updated: (change) => {
        list.applyChange(change);
        // The open conversation was deleted (in this tab or another): start a new chat, as
        // deleting it from the sidebar does. The event may come before the sidebar's own
        // delete request returns, and then the list item that would navigate is gone.
        if (change.deleted && change.id === store.getSnapshot().conversationId) {
          navigate({ name: "chat", conversationId: null });
        }
      },
      finished: (message) => {
        // A new string each time, so the same words twice are still announced.
        setAnnouncement(`${announcementFor(message)}\u200b`.slice(0, 400));
        const { conversationId: id, title, archived } = store.getSnapshot();
        if (id) list.bump({ id, title, archived });
      },
    });
    return { client, store, list };
  }, []);

  const status = useSnapshot(useMemo(() => ({ subscribe: (l: () => void) => client.onStatus(l), getSnapshot: () => client.status }), [client]));

  useEffect(() => {
    client.connect();
    const online = () => client.reconnectNow();
    window.addEventListener("online", online);
    void list.reload();
    modelApi.list().then(
      (page) => {
        const results = page.results ?? [];
        setModelList(results);
        writeLocal(MODELS_KEY, JSON.stringify(results));
      },
      () => setModelList((old) => old ?? []),
    );
    return () => {
      window.removeEventListener("online", online);
      client.close();
    };
  }, [client, list]);

  useEffect(() => {
    if (status.state === "unauthorized") onSignedOut();
  }, [status.state, onSignedOut]);

  useEffect(() => {
    window.addEventListener(UNAUTHORIZED_EVENT, onSignedOut);
    return () => window.removeEventListener(UNAUTHORIZED_EVENT, onSignedOut);
  }, [onSignedOut]);

  const defaultModel = useMemo(() => allowedModel(modelList ?? [], null, readLocal(MODEL_KEY) || null), [modelList]);

  const conversationId = route.name === "chat" ? route.conversationId : null;
  useEffect(() => {
    if (route.name !== "chat") return;
    if (conversationId) void store.open(conversationId);
    else if (store.getSnapshot().conversationId !== null || store.getSnapshot().status !== "empty") store.newChat(defaultModel);
    setDrawerOpen(false);
  }, [route.name, conversationId]);

  useEffect(() => {
    if (!store.getSnapshot().model && defaultModel) store.setModel(defaultModel);
  }, [defaultModel]);

  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      const mod = event.ctrlKey || event.metaKey;
      if (mod && event.shiftKey && event.key.toLowerCase() === "o") {
        event.preventDefault();
        navigate({ name: "chat", conversationId: null });
      } else if (mod && event.key.toLowerCase() === "k") {
        event.preventDefault();
        setDrawerOpen(true);
        requestAnimationFrame(() => searchRef.current?.focus());
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  async function logout() {
    try {
      await auth.logout();
    } finally {
      client.close();
      onSignedOut();
    }
  }

  function chooseModel(name: string) {
    writeLocal(MODEL_KEY, name);
    store.setModel(name);
  }

  return (
    <div class={`shell${drawerOpen ? " drawer-open" : ""}`}>
      <a class="skip-link" href="#composer">
        Skip to message box
      </a>
      <Sidebar
        list={list}
        user={user}
        activeId={conversationId}
        searchRef={searchRef}
        onLogout={logout}
        onClose={() => setDrawerOpen(false)}
        onDeleted={(id) => {
          if (id === store.getSnapshot().conversationId) navigate({ name: "chat", conversationId: null });
        }}
      />
      <div class="scrim" onClick={() => setDrawerOpen(false)} aria-hidden="true" />
      {route.name === "usage" ? (
        <UsageView onMenu={() => setDrawerOpen(true)} />
      ) : route.name === "keys" ? (
        <KeysView onMenu={() => setDrawerOpen(true)} />
      ) : (
        <ChatView
          store={store}
          client={client}
          status={status}
          models={modelList}
          onChooseModel={chooseModel}
          onMenu={() => setDrawerOpen(true)}
        />
      )}
      <div class="sr-only" aria-live="polite" aria-atomic="true" data-testid="announcer">
        {announcement}
      </div>
    </div>
  );
}
