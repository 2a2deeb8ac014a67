import { describe, expect, it } from "vitest";
import { AUTO_MODEL, allowedModel, offersAuto } from "./models";

const plan = [
  { name: "small", default: true },
  { name: "gemma3-270m" },
];

describe("allowedModel", () => {
  it("keeps a model the plan allows", () => {
    expect(allowedModel(plan, "gemma3-270m")).toBe("gemma3-270m");
  });

  it("replaces a model outside the plan with the preferred one, else the default", () => {
    expect(allowedModel(plan, "large", "gemma3-270m")).toBe("gemma3-270m");
    expect(allowedModel(plan, "large", "also-gone")).toBe("small");
    expect(allowedModel(plan, null)).toBe("small");
  });

  it("takes the first listed when the plan's list has no default", () => {
    expect(allowedModel([{ name: "b" }, { name: "c" }], "a")).toBe("b");
  });

  it("leaves the choice alone while no list is known", () => {
    expect(allowedModel([], "large")).toBe("large");
  });

  it("keeps Auto while the plan offers a choice, and drops it when one model is left", () => {
    expect(offersAuto(plan)).toBe(true);
    expect(allowedModel(plan, AUTO_MODEL)).toBe(AUTO_MODEL);
    expect(offersAuto([{ name: "small" }])).toBe(false);
    expect(allowedModel([{ name: "small" }], AUTO_MODEL)).toBe("small");
    expect(allowedModel(plan, null, AUTO_MODEL)).toBe(AUTO_MODEL); // a remembered preference
  });
});
