import { describe, expect, it } from "vitest";
import { AnswerBudget } from "./answer-budget.js";

describe("AnswerBudget (discovery answers)", () => {
  it("answers each source at most twice a second and everyone at most 50 times a second", () => {
    let t = 0;
    const budget = new AnswerBudget(undefined, () => t);
    expect([budget.take("10.0.0.5"), budget.take("10.0.0.5"), budget.take("10.0.0.5")]).toEqual([true, true, false]);
    t = 1_001;
    expect(budget.take("10.0.0.5")).toBe(true);
    // A flood from forged sources: 50 answers in the window, then none.
    const answered = Array.from({ length: 200 }, (_, i) => budget.take(`10.1.${i >> 8}.${i & 255}`)).filter(Boolean).length;
    expect(answered).toBe(49); // 10.0.0.5's one answer in this window counts too
    t = 2_500;
    expect(budget.take("10.9.9.9")).toBe(true);
  });
});
