import { useEffect, useState } from "preact/hooks";
import { ApiError, auth, type KeyUsage, type Plan, usage } from "../api/rest";
import { planRows } from "../state/plan";
import { Icon } from "./icons";

type Loaded = { kind: "loading" } | { kind: "unavailable" } | { kind: "error"; message: string } | { kind: "ready"; data: Record<string, unknown> };

const label = (key: string) => key.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());

function formatValue(value: unknown): string {
  if (typeof value === "number") return Number.isInteger(value) ? value.toLocaleString() : value.toFixed(4);
  if (value === null || value === undefined) return "—";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** A table for a list of records; columns are the union of their keys, in first-seen order. */
function RecordTable({ title, rows }: { title: string; rows: Record<string, unknown>[] }) {
  const columns: string[] = [];
  for (const row of rows) for (const key of Object.keys(row)) if (!columns.includes(key)) columns.push(key);
  return (
    <section class="usage-section">
      <h2>{label(title)}</h2>
      {rows.length ? (
        <div class="table-scroll">
          <table>
            <thead>
              <tr>
                {columns.map((c) => (
                  <th key={c} scope="col">
                    {label(c)}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map((row, i) => (
                <tr key={i}>
                  {columns.map((c) => (
                    <td key={c}>{formatValue(row[c])}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <p class="hint">Nothing yet.</p>
      )}
    </section>
  );
}

function Facts({ title, data }: { title: string; data: Record<string, unknown> }) {
  return (
    <section class="usage-section">
      <h2>{label(title)}</h2>
      <dl class="facts">
        {Object.entries(data).map(([key, value]) => (
          <div key={key}>
            <dt>{label(key)}</dt>
            <dd>{formatValue(value)}</dd>
          </div>
        ))}
      </dl>
    </section>
  );
}

/** The user's plan (GET /api/auth/me): each limit and what is left of it now. */
function PlanSection({ plan }: { plan: Plan }) {
  return (
    <section class="usage-section" data-testid="plan" aria-labelledby="plan-title">
      <h2 id="plan-title">
        Your plan: <span data-testid="plan-name">{plan.name}</span>
      </h2>
      {plan.description && <p class="hint">{plan.description}</p>}
      <div class="table-scroll">
        <table>
          <thead>
            <tr>
              <th scope="col">Limit</th>
              <th scope="col">Your plan</th>
              <th scope="col">Left now</th>
            </tr>
          </thead>
          <tbody>
            {planRows(plan).map((row) => (
              <tr key={row.id} data-limit={row.id}>
                <th scope="row">{row.label}</th>
                <td>{row.limit}</td>
                <td data-testid={row.left === null ? undefined : `left-${row.id}`}>{row.left ?? "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

const isKeyUsage = (row: unknown): row is KeyUsage =>
  typeof row === "object" && row !== null && typeof (row as KeyUsage).key_id === "number" && typeof (row as KeyUsage).total_tokens === "number";

/** GET /api/usage's `per_key`: each API key's requests and tokens in the period, most first. */
function KeyUsageSection({ rows, truncated }: { rows: KeyUsage[]; truncated: boolean }) {
  return (
    <section class="usage-section" data-testid="key-usage" aria-labelledby="key-usage-title">
      <h2 id="key-usage-title">Per API key</h2>
      {rows.length ? (
        <div class="table-scroll">
          <table>
            <thead>
              <tr>
                <th scope="col">Key</th>
                <th scope="col">Prefix</th>
                <th scope="col">Requests</th>
                <th scope="col">Tokens</th>
                <th scope="col">Cost</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => (
                <tr key={row.key_id} data-testid="key-usage-row" data-key-id={row.key_id}>
                  <th scope="row">
                    {row.name ?? `Key #${row.key_id}`}
                    {row.revoked && <span class="hint"> (revoked)</span>}
                  </th>
                  <td>{row.prefix ? `${row.prefix}…` : "—"}</td>
                  <td>{formatValue(row.generations)}</td>
                  <td title={`${formatValue(row.prompt_tokens)} in, ${formatValue(row.completion_tokens)} out`}>{formatValue(row.total_tokens)}</td>
                  <td>{formatValue(row.cost)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <p class="hint">No API key was used in this period.</p>
      )}
      {truncated && (
        <p class="hint" data-testid="key-usage-truncated">
          Only the most used keys are listed.
        </p>
      )}
    </section>
  );
}

/**
 * The user's usage from GET /api/usage, and their plan with what is left of it from
 * GET /api/auth/me (read again here: what is left changes with every message). The view follows the shape the server sends (lists of
 * records become tables, objects become fact lists), so additions to the endpoint show up
 * without a client release, and a server without the endpoint gets a clear message.
 */
export function UsageView({ onMenu }: { onMenu(): void }) {
  const [state, setState] = useState<Loaded>({ kind: "loading" });
  const [plan, setPlan] = useState<Plan | null>(null);
  useEffect(() => {
    auth.me().then(
      (me) => setPlan(me?.plan ?? null),
      () => setPlan(null), // an older server, or a blip: the usage still shows
    );
    usage.get().then(
      (data) => setState({ kind: "ready", data: data ?? {} }),
      (error) =>
        setState(
          error instanceof ApiError && (error.status === 404 || error.status === 405)
            ? { kind: "unavailable" }
            : { kind: "error", message: (error as Error).message },
        ),
    );
  }, []);

  const scalars: Record<string, unknown> = {};
  const sections: preact.JSX.Element[] = [];
  if (state.kind === "ready") {
    for (const [key, value] of Object.entries(state.data)) {
      if (key === "per_key_truncated" && "per_key" in state.data) continue; // shown with per_key
      if (key === "per_key" && Array.isArray(value) && value.every(isKeyUsage)) {
        sections.push(<KeyUsageSection key={key} rows={value} truncated={state.data.per_key_truncated === true} />);
      } else if (Array.isArray(value)) sections.push(<RecordTable key={key} title={key} rows={value.filter((v) => typeof v === "object" && v) as Record<string, unknown>[]} />);
      else if (value && typeof value === "object") sections.push(<Facts key={key} title={key} data={value as Record<string, unknown>} />);
      else scalars[key] = value;
    }
  }

  return (
    <main class="chat usage" aria-label="Usage">
      <header class="chat-header">
        <button type="button" class="icon-button menu-button" aria-label="Open conversations" onClick={onMenu}>
          <Icon name="menu" size={22} />
        </button>
        <h1 class="chat-title">Usage and quota</h1>
      </header>
      <div class="thread-scroll">
        <div class="thread usage-body" data-testid="usage">
          {plan && <PlanSection plan={plan} />}
          {state.kind === "loading" && <p role="status">Loading…</p>}
          {state.kind === "unavailable" && <p class="empty">Usage reporting is not available on this server yet.</p>}
          {state.kind === "error" && (
            <p class="form-error" role="alert">
              {state.message}
            </p>
          )}
          {state.kind === "ready" && Object.keys(scalars).length > 0 && <Facts title="summary" data={scalars} />}
          {sections}
        </div>
      </div>
    </main>
  );
}
