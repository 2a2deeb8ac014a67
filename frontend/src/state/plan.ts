// The user's plan as rows for the usage page: each limit, and what is left of it now, in words.
import type { Plan } from "../api/rest";

export interface PlanRow {
  /** Stable name for tests and styling. */
  id: string;
  label: string;
  limit: string;
  /** What is left now; null when the limit has nothing to count down. */
  left: string | null;
}

const count = (value: number) => value.toLocaleString("en-US");

/** A limit of the plan (0 or missing: none). */
function limitText(value: number | null | undefined, unit: string): string {
  return value ? `${count(value)} ${unit}` : "No limit";
}

/** What is left (null: no limit, or the server could not read it just now). */
function leftText(limit: number | null | undefined, left: number | null | undefined): string | null {
  if (!limit) return null;
  return typeof left === "number" ? count(left) : "Unknown right now";
}

export function planRows(plan: Plan): PlanRow[] {
  const { limits, left } = plan;
  const models = limits.allowed_models ?? [];
  return [
    {
      id: "messages_today",
      label: "Messages per day",
      limit: limitText(limits.daily_messages, "a day"),
      left: leftText(limits.daily_messages, left.messages_today),
    },
    {
      id: "messages_this_minute",
      label: "Messages per minute",
      limit: limitText(limits.messages_per_minute, "a minute"),
      left: leftText(limits.messages_per_minute, left.messages_this_minute),
    },
    {
      id: "tokens_this_month",
      label: "Tokens per month",
      limit: limitText(limits.monthly_token_budget, "a month"),
      left: leftText(limits.monthly_token_budget, left.tokens_this_month),
    },
    {
      id: "concurrent_generations",
      label: "Answers at once",
      limit: limitText(limits.concurrent_generations, "at once"),
      left: leftText(limits.concurrent_generations, left.concurrent_generations),
    },
    {
      id: "max_output_tokens",
      label: "Longest answer",
      limit: limits.max_output_tokens ? `${count(limits.max_output_tokens)} tokens` : "The model's own",
      left: null,
    },
    {
      id: "allowed_models",
      label: "Models",
      limit: models.length ? models.join(", ") : "Every model",
      left: null,
    },
  ];
}
