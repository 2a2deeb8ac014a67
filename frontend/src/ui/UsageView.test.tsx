// @vitest-environment jsdom
import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { KeyUsage } from "../api/rest";
import { UsageView } from "./UsageView";

const sums = { generations: 0, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, cost: 0 };

function keyUsage(key_id: number, fields: Partial<KeyUsage>): KeyUsage {
  return { key_id, name: `key ${key_id}`, prefix: `sk-Pfx0000${key_id}`, revoked: false, ...sums, ...fields };
}

let usageBody: Record<string, unknown>;
let root: HTMLElement;

beforeEach(() => {
  usageBody = {
    since: "2026-11-06",
    days: 30,
    per_source: [
      { source: "ws", ...sums, generations: 2 },
      { source: "api", ...sums, generations: 5 },
    ],
    per_key: [
      keyUsage(3, { name: "ci", revoked: true, generations: 4, prompt_tokens: 1200, completion_tokens: 34, total_tokens: 1234, cost: 0.5 }),
      keyUsage(1, { name: "laptop", generations: 1, prompt_tokens: 20, completion_tokens: 35, total_tokens: 55 }),
    ],
    per_key_truncated: false,
    total: { ...sums, generations: 7 },
  };
  vi.stubGlobal("fetch", async (path: string) => {
    if (path === "/api/usage") return new Response(JSON.stringify(usageBody), { status: 200 });
    return new Response(JSON.stringify({ error: { code: "not_found", message: "No." } }), { status: 404 });
  });
  root = document.createElement("div");
  document.body.appendChild(root);
});

afterEach(() => {
  render(null, root);
  root.remove();
  vi.unstubAllGlobals();
});

async function mount(): Promise<void> {
  await act(() => {
    render(<UsageView onMenu={() => undefined} />, root);
  });
  for (let i = 0; i < 5; i++) await act(() => new Promise<void>((resolve) => setTimeout(resolve, 0)));
}

const keyRows = () => [...root.querySelectorAll<HTMLElement>('[data-testid="key-usage-row"]')];
const cells = (row: HTMLElement) => [...row.querySelectorAll("th, td")].map((cell) => cell.textContent);

describe("UsageView per API key", () => {
  it("shows each key's name, prefix, requests, tokens and cost, in the server's order", async () => {
    await mount();

    expect(root.querySelector('[data-testid="key-usage"] h2')?.textContent).toBe("Per API key");
    expect(keyRows().map((row) => row.dataset.keyId)).toEqual(["3", "1"]);
    expect(cells(keyRows()[0])).toEqual(["ci (revoked)", "sk-Pfx00003…", "4", (1234).toLocaleString(), "0.5000"]);
    expect(cells(keyRows()[1])).toEqual(["laptop", "sk-Pfx00001…", "1", "55", "0"]);
    expect(keyRows()[0].querySelectorAll("td")[2].getAttribute("title")).toBe(`${(1200).toLocaleString()} in, 34 out`);
    expect(root.querySelector('[data-testid="key-usage-truncated"]')).toBeNull();
    // Drawn once, as its own section: not again as a generic table, nor the flag as a fact.
    expect(root.textContent).not.toContain("Per key");
    expect(root.textContent).not.toContain("truncated");
    // The other lists still render as before.
    expect(root.textContent).toContain("Per source");
  });

  it("says when keys were left out, and names a key that is not the user's by its id", async () => {
    usageBody.per_key = [keyUsage(9, { name: null, prefix: null, generations: 1, total_tokens: 2 })];
    usageBody.per_key_truncated = true;

    await mount();

    expect(cells(keyRows()[0])).toEqual(["Key #9", "—", "1", "2", "0"]);
    expect(root.querySelector('[data-testid="key-usage-truncated"]')?.textContent).toBe("Only the most used keys are listed.");
  });

  it("says so when no key was used, and an older server without per_key shows no section", async () => {
    usageBody.per_key = [];
    await mount();
    expect(keyRows()).toHaveLength(0);
    expect(root.querySelector('[data-testid="key-usage"]')?.textContent).toContain("No API key was used in this period.");

    render(null, root);
    delete usageBody.per_key;
    delete usageBody.per_key_truncated;
    await mount();
    expect(root.querySelector('[data-testid="key-usage"]')).toBeNull();
    expect(root.textContent).toContain("Per source");
  });
});
