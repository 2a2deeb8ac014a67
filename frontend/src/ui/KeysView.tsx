import { useEffect, useMemo, useState } from "preact/hooks";
import { API_KEY_SCOPES, ApiError, type ApiKey, type ApiKeyScope } from "../api/rest";
import { ApiKeyList, EXPIRY_CHOICES, NAME_MAX_LENGTH } from "../state/api-keys";
import { Dialog } from "./Dialog";
import { copyText, useSnapshot } from "./hooks";
import { Icon } from "./icons";

const SCOPE_HINTS: Record<ApiKeyScope, string> = {
  chat: "chat completions",
  models: "list the models",
  moderations: "check text",
  embeddings: "embed text",
};

function when(iso: string | null, none: string): string {
  if (!iso) return none;
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}

function expiry(key: ApiKey): string {
  if (!key.expires_at) return "Never";
  const expired = new Date(key.expires_at).getTime() <= Date.now();
  return expired ? `Expired ${when(key.expires_at, "")}` : when(key.expires_at, "Never");
}

/** The new key, shown once: copy it now, or lose it. */
function CreatedKey({ secret, name, onDone }: { secret: string; name: string; onDone(): void }) {
  const [copied, setCopied] = useState<boolean | null>(null);
  return (
    <section class="usage-section key-created" data-testid="key-created" aria-labelledby="key-created-title">
      <h2 id="key-created-title">Copy your new key “{name}” now</h2>
      <p class="key-warning" role="alert">
        This is the only time the whole key is shown. Keep it somewhere safe, such as a password manager: it cannot be
        shown again. Anyone who has it can use your plan. If you lose it, revoke it and create another.
      </p>
      <div class="key-secret-row">
        <input
          type="text"
          readonly
          class="key-secret"
          data-testid="key-secret"
          aria-label="Your new API key"
          value={secret}
          spellcheck={false}
          autocomplete="off"
          onFocus={(e) => (e.target as HTMLInputElement).select()}
        />
        <button type="button" class="primary" data-testid="key-copy" onClick={async () => setCopied(await copyText(secret))}>
          <Icon name={copied ? "check" : "copy"} /> {copied ? "Copied" : "Copy"}
        </button>
      </div>
      <p class="hint" role="status" data-testid="key-copy-status">
        {copied === null ? "" : copied ? "Copied to the clipboard." : "Could not copy: select the key and copy it yourself."}
      </p>
      <button type="button" data-testid="key-created-done" onClick={onDone}>
        I have copied it
      </button>
    </section>
  );
}

function CreateForm({ list, busy }: { list: ApiKeyList; busy: boolean }) {
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState<ApiKeyScope[]>([...API_KEY_SCOPES]);
  const [days, setDays] = useState<number | null>(90);
  const [error, setError] = useState<string | null>(null);
  const [fields, setFields] = useState<Record<string, string[]>>({});

  async function submit(event: Event) {
    event.preventDefault();
    setError(null);
    setFields({});
    try {
      await list.create({ name, scopes, expires_in_days: days });
      setName("");
    } catch (caught) {
      if (caught instanceof ApiError) {
        setFields(caught.fields);
        setError(Object.keys(caught.fields).length ? "Please fix the fields below." : caught.message);
      } else {
        setError("Something went wrong. Please try again.");
      }
    }
  }

  const fieldError = (field: string) =>
    fields[field]?.length ? (
      <p class="field-error" id={`key-${field}-error`}>
        {fields[field].join(" ")}
      </p>
    ) : null;
  const toggle = (scope: ApiKeyScope, on: boolean) =>
    setScopes(API_KEY_SCOPES.filter((s) => (s === scope ? on : scopes.includes(s))));

  return (
    <section class="usage-section" aria-labelledby="key-create-title">
      <h2 id="key-create-title">Create a key</h2>
      <form class="key-form" onSubmit={submit} noValidate>
        {error && (
          <p class="form-error" role="alert">
            {error}
          </p>
        )}
        <label for="key-name">Name</label>
        <input
          id="key-name"
          data-testid="key-name"
          maxLength={NAME_MAX_LENGTH}
          placeholder="e.g. laptop, CI, my editor"
          value={name}
          aria-invalid={fields.name ? "true" : undefined}
          aria-describedby={fields.name ? "key-name-error" : undefined}
          onInput={(e) => setName((e.target as HTMLInputElement).value)}
        />
        {fieldError("name")}
        <fieldset class="key-scopes" aria-describedby={fields.scopes ? "key-scopes-error" : undefined}>
          <legend>Scopes: what the key may do</legend>
          {API_KEY_SCOPES.map((scope) => (
            <label key={scope} class="key-scope">
              <input
                type="checkbox"
                data-testid={`key-scope-${scope}`}
                checked={scopes.includes(scope)}
                onChange={(e) => toggle(scope, (e.target as HTMLInputElement).checked)}
              />
              <code>{scope}</code> <span class="hint">{SCOPE_HINTS[scope]}</span>
            </label>
          ))}
        </fieldset>
        {fieldError("scopes")}
        <label for="key-expiry">Expires after</label>
        <select
          id="key-expiry"
          data-testid="key-expiry"
          value={days === null ? "never" : String(days)}
          onChange={(e) => {
            const value = (e.target as HTMLSelectElement).value;
            setDays(value === "never" ? null : Number(value));
          }}
        >
          {EXPIRY_CHOICES.map((choice) => (
            <option key={choice.label} value={choice.days === null ? "never" : String(choice.days)}>
              {choice.label}
            </option>
          ))}
        </select>
        {fieldError("expires_in_days")}
        <div>
          <button type="submit" class="primary" data-testid="key-create" disabled={busy}>
            {busy ? "Please wait…" : "Create key"}
          </button>
        </div>
      </form>
    </section>
  );
}

/**
 * Settings: the user's keys for the OpenAI-compatible API (GET/POST /api/keys, DELETE
 * /api/keys/{id}). A new key's secret is shown once, with a copy button; revoking asks first.
 */
export function KeysView({ onMenu }: { onMenu(): void }) {
  const list = useMemo(() => new ApiKeyList(), []);
  const state = useSnapshot(list);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);
  useEffect(() => {
    void list.reload();
  }, [list]);

  return (
    <main class="chat usage" aria-label="API keys">
      <header class="chat-header">
        <button type="button" class="icon-button menu-button" aria-label="Open conversations" onClick={onMenu}>
          <Icon name="menu" size={22} />
        </button>
        <h1 class="chat-title">API keys</h1>
      </header>
      <div class="thread-scroll">
        <div class="thread usage-body" data-testid="api-keys">
          <p class="hint">
            A key lets a program use your models through the OpenAI-compatible API at <code>{location.origin}/v1</code>:
            the <code>openai</code> SDKs, LangChain, editor plug-ins, curl. What it does counts against your plan.
          </p>
          {state.created && (
            <CreatedKey secret={state.created.key} name={state.created.name} onDone={() => list.dismissCreated()} />
          )}
          <CreateForm list={list} busy={state.busy} />
          <section class="usage-section" aria-labelledby="key-list-title">
            <h2 id="key-list-title">Your keys</h2>
            {state.error && (
              <p class="form-error" role="alert">
                {state.error}
              </p>
            )}
            {state.loading && !state.keys.length ? (
              <p role="status">Loading…</p>
            ) : state.keys.length ? (
              <div class="table-scroll">
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Name</th>
                      <th scope="col">Key</th>
                      <th scope="col">Scopes</th>
                      <th scope="col">Created</th>
                      <th scope="col">Expires</th>
                      <th scope="col">Last used</th>
                      <th scope="col">
                        <span class="sr-only">Actions</span>
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {state.keys.map((key) => (
                      <tr key={key.id} data-testid="key-row" data-key-id={key.id}>
                        <td>{key.name}</td>
                        <td>
                          <code>{key.prefix}…</code>
                        </td>
                        <td>{key.scopes.join(", ")}</td>
                        <td>{when(key.created_at, "—")}</td>
                        <td>{expiry(key)}</td>
                        <td>{when(key.last_used_at, "Never")}</td>
                        <td>
                          <button
                            type="button"
                            class="danger"
                            data-testid="key-revoke"
                            aria-label={`Revoke the key ${key.name}`}
                            disabled={state.busy}
                            onClick={() => setRevoking(key)}
                          >
                            Revoke
                          </button>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            ) : (
              <p class="hint" data-testid="no-keys">
                No keys yet.
              </p>
            )}
          </section>
        </div>
      </div>
      {revoking && (
        <Dialog title="Revoke this key?" onClose={() => setRevoking(null)}>
          <p>
            “{revoking.name}” (<code>{revoking.prefix}…</code>) stops working at once, for every program that uses it. This
            cannot be undone.
          </p>
          <div class="dialog-actions">
            <button type="button" onClick={() => setRevoking(null)}>
              Cancel
            </button>
            <button
              type="button"
              class="danger-solid"
              data-testid="confirm-revoke"
              onClick={() => {
                const key = revoking;
                setRevoking(null);
                void list.revoke(key.id);
              }}
            >
              Revoke key
            </button>
          </div>
        </Dialog>
      )}
    </main>
  );
}
