import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError, type ApiKey } from "../api/rest";
import { ApiKeyList, newKeyProblems } from "./api-keys";

function listed(id: number, name = `key ${id}`): ApiKey {
  return {
    id,
    name,
    prefix: `sk-abcdef${id}`,
    scopes: ["chat", "models"],
    created_at: "2026-12-01T10:00:00Z",
    expires_at: null,
    last_used_at: null,
  };
}

interface Call {
  method: string;
  path: string;
  body: unknown;
  csrf: string | undefined;
}

/** A server for /api/keys: `answer(method, path, body)` gives [status, body]. */
function serve(answer: (method: string, path: string, body: unknown) => [number, unknown]): Call[] {
  const calls: Call[] = [];
  vi.stubGlobal("document", { cookie: "csrftoken=tok" });
  vi.stubGlobal("fetch", async (path: string, init: RequestInit) => {
    const body = init.body ? JSON.parse(String(init.body)) : undefined;
    const headers = init.headers as Record<string, string>;
    calls.push({ method: init.method ?? "GET", path, body, csrf: headers["X-CSRFToken"] });
    const [status, reply] = answer(init.method ?? "GET", path, body);
    return new Response(reply === undefined ? null : JSON.stringify(reply), { status });
  });
  return calls;
}

afterEach(() => vi.unstubAllGlobals());

describe("ApiKeyList", () => {
  it("lists the user's keys", async () => {
    serve(() => [200, { results: [listed(2), listed(1)], next_cursor: null }]);
    const list = new ApiKeyList();

    await list.reload();

    expect(list.getSnapshot().keys.map((k) => k.id)).toEqual([2, 1]);
    expect(list.getSnapshot()).toMatchObject({ loading: false, error: null });
  });

  it("says why the list could not be loaded", async () => {
    serve(() => [500, { error: { code: "server_error", message: "The store is down." } }]);
    const list = new ApiKeyList();

    await list.reload();

    expect(list.getSnapshot()).toMatchObject({ keys: [], loading: false, error: "The store is down." });
  });

  it("creates a key: the secret is held once, apart from the listed key", async () => {
    const calls = serve((method) =>
      method === "POST"
        ? [201, { ...listed(3, "laptop"), key: "sk-abcdef3-the-whole-secret" }]
        : [200, { results: [listed(1)], next_cursor: null }],
    );
    const list = new ApiKeyList();
    await list.reload();

    const created = await list.create({ name: "  laptop ", scopes: ["chat"], expires_in_days: 30 });

    expect(calls.at(-1)).toEqual({
      method: "POST",
      path: "/api/keys",
      body: { name: "laptop", scopes: ["chat"], expires_in_days: 30 },
      csrf: "tok",
    });
    expect(created.key).toBe("sk-abcdef3-the-whole-secret");
    const snapshot = list.getSnapshot();
    expect(snapshot.created?.key).toBe("sk-abcdef3-the-whole-secret");
    expect(snapshot.keys.map((k) => k.id)).toEqual([3, 1]);
    expect("key" in snapshot.keys[0]).toBe(false);
    expect(snapshot.busy).toBe(false);

    list.dismissCreated();
    expect(list.getSnapshot().created).toBeNull();
    expect(JSON.stringify(list.getSnapshot())).not.toContain("the-whole-secret");
  });

  it("sends a key that never expires as expires_in_days null", async () => {
    const calls = serve(() => [201, { ...listed(4), key: "sk-x" }]);

    await new ApiKeyList().create({ name: "ci", scopes: ["models"], expires_in_days: null });

    expect(calls[0].body).toEqual({ name: "ci", scopes: ["models"], expires_in_days: null });
  });

  it("refuses a nameless key or one without scopes before asking the server", async () => {
    const calls = serve(() => [201, {}]);
    const list = new ApiKeyList();

    const refusal = await list.create({ name: "   ", scopes: [], expires_in_days: 30 }).catch((e: unknown) => e);

    expect(refusal).toBeInstanceOf(ApiError);
    expect(Object.keys((refusal as ApiError).fields).sort()).toEqual(["name", "scopes"]);
    expect(calls).toEqual([]);
  });

  it("passes the server's field errors on, and is no longer busy", async () => {
    serve(() => [409, { error: { code: "conflict", message: "At most 20 keys per user: revoke one first." } }]);
    const list = new ApiKeyList();

    const refusal = await list.create({ name: "one too many", scopes: ["chat"], expires_in_days: 30 }).catch((e: unknown) => e);

    expect((refusal as ApiError).status).toBe(409);
    expect((refusal as ApiError).message).toBe("At most 20 keys per user: revoke one first.");
    expect(list.getSnapshot()).toMatchObject({ busy: false, created: null });
  });

  it("revokes a key: DELETE, then it leaves the list (and so does its shown secret)", async () => {
    const calls = serve((method) =>
      method === "DELETE" ? [204, undefined] : method === "POST" ? [201, { ...listed(5), key: "sk-secret" }] : [200, { results: [listed(1)], next_cursor: null }],
    );
    const list = new ApiKeyList();
    await list.reload();
    await list.create({ name: "temp", scopes: ["chat"], expires_in_days: 30 });

    expect(await list.revoke(5)).toBe(true);

    expect(calls.at(-1)).toMatchObject({ method: "DELETE", path: "/api/keys/5", csrf: "tok" });
    expect(list.getSnapshot().keys.map((k) => k.id)).toEqual([1]);
    expect(list.getSnapshot().created).toBeNull();
  });

  it("treats a key the server no longer has as revoked, and keeps one it failed to revoke", async () => {
    let status = 404;
    serve((method) => (method === "DELETE" ? [status, { error: { code: "not_found", message: "No such key." } }] : [200, { results: [listed(1), listed(2)], next_cursor: null }]));
    const list = new ApiKeyList();
    await list.reload();

    expect(await list.revoke(1)).toBe(true);
    status = 500;
    expect(await list.revoke(2)).toBe(false);

    expect(list.getSnapshot().keys.map((k) => k.id)).toEqual([2]);
    expect(list.getSnapshot()).toMatchObject({ busy: false, error: "No such key." });
  });
});

describe("newKeyProblems", () => {
  it("accepts a named key with a scope", () => {
    expect(newKeyProblems({ name: "laptop", scopes: ["chat"], expires_in_days: null })).toEqual({});
  });

  it("names a name over 100 characters", () => {
    expect(Object.keys(newKeyProblems({ name: "x".repeat(101), scopes: ["chat"], expires_in_days: 1 }))).toEqual(["name"]);
  });
});
