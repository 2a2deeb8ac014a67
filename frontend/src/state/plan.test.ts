import { describe, expect, it } from "vitest";
import type { Plan } from "../api/rest";
import { planRows } from "./plan";

const byId = (plan: Plan) => Object.fromEntries(planRows(plan).map((row) => [row.id, row]));

describe("planRows", () => {
  it("shows each limit of the plan and what is left of it", () => {
    const rows = byId({
      name: "pro",
      limits: {
        messages_per_minute: 60,
        daily_messages: 5000,
        monthly_token_budget: 2_000_000,
        concurrent_generations: 4,
        max_output_tokens: 1024,
        allowed_models: ["smollm2-135m", "gemma3-270m"],
        priority: 9,
      },
      left: { messages_this_minute: 59, messages_today: 4321, tokens_this_month: 1_500_000, concurrent_generations: 3 },
    });

    expect(rows.messages_today).toMatchObject({ limit: "5,000 a day", left: "4,321" });
    expect(rows.messages_this_minute).toMatchObject({ limit: "60 a minute", left: "59" });
    expect(rows.tokens_this_month).toMatchObject({ limit: "2,000,000 a month", left: "1,500,000" });
    expect(rows.concurrent_generations).toMatchObject({ limit: "4 at once", left: "3" });
    expect(rows.max_output_tokens).toMatchObject({ limit: "1,024 tokens", left: null });
    expect(rows.allowed_models).toMatchObject({ limit: "smollm2-135m, gemma3-270m", left: null });
  });

  it("says so where the plan has no limit, and where what is left cannot be read", () => {
    const rows = byId({
      name: "free",
      limits: { messages_per_minute: 20, daily_messages: 0, monthly_token_budget: 0, concurrent_generations: 3, max_output_tokens: null, allowed_models: [] },
      left: { messages_this_minute: null, messages_today: null, tokens_this_month: null, concurrent_generations: null },
    });

    expect(rows.messages_today).toMatchObject({ limit: "No limit", left: null });
    expect(rows.tokens_this_month).toMatchObject({ limit: "No limit", left: null });
    expect(rows.messages_this_minute).toMatchObject({ limit: "20 a minute", left: "Unknown right now" });
    expect(rows.max_output_tokens.limit).toBe("The model's own");
    expect(rows.allowed_models.limit).toBe("Every model");
  });
});
