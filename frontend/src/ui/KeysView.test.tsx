// @vitest-environment jsdom
import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ApiKey } from "../api/rest";
import { KeysView } from "./KeysView";

const SECRET = "sk-Q2v9sX1a-this-is-the-whole-secret-key-0123456789";

function key(id: number, name: string): ApiKey {
  return {
    id,
    name,
    prefix: `sk-Pfx0000${id}`,
    scopes: ["chat", "models", "moderations", "embeddings"],
    created_at: "2026-11-02T10:00:00Z",
    expires_at: null,
    last_used_at: "2026-12-04T09:30:00Z",
  };
}

interface Call {
  method: string;
  path: string;
  body: unknown;
}

let calls: Call[];
let root: HTMLElement;
const writeText = vi.fn(async (_text: string) => undefined);

beforeEach(() => {
  calls = [];
  let keys = [key(1, "old laptop")];
  vi.stubGlobal("fetch", async (path: string, init: RequestInit) => {
    const method = init.method ?? "GET";
    const body = init.body ? JSON.parse(String(init.body)) : undefined;
    calls.push({ method, path, body });
    if (method === "POST") {
      const created = { ...key(7, body.name), scopes: body.scopes, expires_at: null, last_used_at: null };
      keys = [created, ...keys];
      return new Response(JSON.stringify({ ...created, key: SECRET }), { status: 201 });
    }
    if (method === "DELETE") {
      keys = keys.filter((k) => path !== `/api/keys/${k.id}`);
      return new Response(null, { status: 204 });
    }
    return new Response(JSON.stringify({ results: keys, next_cursor: null }), { status: 200 });
  });
  Object.defineProperty(navigator, "clipboard", { value: { writeText }, configurable: true });
  // jsdom has <dialog> without its modal methods.
  HTMLDialogElement.prototype.showModal = function (this: HTMLDialogElement) {
    this.setAttribute("open", "");
  };
  HTMLDialogElement.prototype.close = function (this: HTMLDialogElement) {
    this.removeAttribute("open");
  };
  root = document.createElement("div");
  document.body.appendChild(root);
});

afterEach(() => {
  render(null, root);
  root.remove();
  vi.unstubAllGlobals();
  writeText.mockClear();
});

const byTestId = (id: string) => root.querySelector<HTMLElement>(`[data-testid="${id}"]`);
const rows = () => [...root.querySelectorAll<HTMLElement>('[data-testid="key-row"]')];

/** Let fetches resolve and Preact re-render. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await act(() => new Promise<void>((resolve) => setTimeout(resolve, 0)));
}

async function mount(): Promise<void> {
  await act(() => {
    render(<KeysView onMenu={() => undefined} />, root);
  });
  await settle();
}

async function createKey(name: string): Promise<void> {
  const input = byTestId("key-name") as HTMLInputElement;
  input.value = name;
  await act(() => {
    input.dispatchEvent(new Event("input", { bubbles: true }));
  });
  await act(() => (byTestId("key-scope-embeddings") as HTMLInputElement).click());
  const expiry = byTestId("key-expiry") as HTMLSelectElement;
  expiry.value = "never";
  await act(() => {
    expiry.dispatchEvent(new Event("change", { bubbles: true }));
  });
  await act(() => (byTestId("key-create") as HTMLButtonElement).click());
  await settle();
}

describe("KeysView", () => {
  it("lists each key's name, prefix, scopes, dates and last use, never a secret", async () => {
    await mount();

    expect(rows()).toHaveLength(1);
    const cells = [...rows()[0].querySelectorAll("td")].map((td) => td.textContent);
    expect(cells.slice(0, 3)).toEqual(["old laptop", "sk-Pfx00001…", "chat, models, moderations, embeddings"]);
    expect(cells[3]).toMatch(/2026/);
    expect(cells[4]).toBe("Never");
    expect(cells[5]).toMatch(/2026/);
  });

  it("creates a key and shows the whole key once, with a warning and a copy button", async () => {
    await mount();

    await createKey("  editor  ");

    expect(calls.filter((c) => c.method === "POST")).toEqual([
      { method: "POST", path: "/api/keys", body: { name: "editor", scopes: ["chat", "models", "moderations"], expires_in_days: null } },
    ]);
    expect((byTestId("key-secret") as HTMLInputElement).value).toBe(SECRET);
    expect(byTestId("key-created")?.textContent).toContain("This is the only time the whole key is shown");
    expect(rows().map((row) => row.dataset.keyId)).toEqual(["7", "1"]);
    expect(root.querySelector("table")?.textContent).not.toContain(SECRET);

    await act(() => (byTestId("key-copy") as HTMLButtonElement).click());
    await settle();
    expect(writeText).toHaveBeenCalledWith(SECRET);
    expect(byTestId("key-copy-status")?.textContent).toBe("Copied to the clipboard.");

    await act(() => (byTestId("key-created-done") as HTMLButtonElement).click());
    expect(byTestId("key-secret")).toBeNull();
    expect(root.textContent).not.toContain(SECRET);
  });

  it("names what to fix, without asking the server, when the name is empty", async () => {
    await mount();

    await act(() => (byTestId("key-create") as HTMLButtonElement).click());
    await settle();

    expect(root.querySelector("#key-name-error")?.textContent).toMatch(/name/i);
    expect(calls.filter((c) => c.method === "POST")).toEqual([]);
  });

  it("revokes a key only after the person confirms", async () => {
    await mount();
    await act(() => (byTestId("key-revoke") as HTMLButtonElement).click());
    const dialog = root.querySelector("dialog");
    expect(dialog?.textContent).toContain("“old laptop”");
    expect(dialog?.textContent).toContain("stops working at once");

    const cancel = [...dialog!.querySelectorAll("button")].find((b) => b.textContent === "Cancel")!;
    await act(() => cancel.click());
    expect(root.querySelector("dialog")).toBeNull();
    expect(calls.filter((c) => c.method === "DELETE")).toEqual([]);

    await act(() => (byTestId("key-revoke") as HTMLButtonElement).click());
    await act(() => (byTestId("confirm-revoke") as HTMLButtonElement).click());
    await settle();

    expect(calls.filter((c) => c.method === "DELETE").map((c) => c.path)).toEqual(["/api/keys/1"]);
    expect(rows()).toHaveLength(0);
    expect(byTestId("no-keys")?.textContent).toBe("No keys yet.");
  });
});
