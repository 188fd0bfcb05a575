import { describe, expect, it } from "vitest";
import { planAction, VM_ACTIONS, VM_STATUSES, TRANSITIONAL } from "./state.js";

describe("planAction", () => {
  it("lets a running VM shut down, power off, reset, restart and be deleted, but not start", () => {
    expect(planAction("shutdown", "running", true)).toEqual({ during: "being shutdown", success: "closed", failure: "shutdown error" });
    expect(planAction("poweroff", "running", true)).toMatchObject({ during: "being poweroff", success: "closed" });
    expect(planAction("reset", "running", true)).toMatchObject({ during: "resetting", success: "running" });
    expect(planAction("restart", "running", true)).toMatchObject({ during: "restarting", success: "running" });
    expect(planAction("delete", "running", true)).toMatchObject({ during: "deleting", success: null });
    expect(planAction("start", "running", true)).toEqual({ refused: "vm is running" });
  });

  it("lets a closed VM start, restart and be deleted only", () => {
    expect(planAction("start", "closed", false)).toMatchObject({ during: "starting", success: "running", failure: "start error" });
    expect(planAction("restart", "closed", false)).toMatchObject({ during: "restarting" });
    expect(planAction("delete", "closed", false)).toMatchObject({ during: "deleting" });
    for (const a of ["shutdown", "poweroff", "reset"] as const) expect(planAction(a, "closed", false)).toEqual({ refused: "vm is closed" });
  });

  it("refuses every action while another one runs", () => {
    for (const s of TRANSITIONAL) for (const a of VM_ACTIONS) expect(planAction(a, s, true)).toEqual({ refused: `vm is ${s}` });
  });

  it("lets an errored VM be retried by what its process allows, and always deleted", () => {
    expect(planAction("start", "start error", false)).toMatchObject({ during: "starting" });
    expect(planAction("poweroff", "shutdown error", true)).toMatchObject({ during: "being poweroff" });
    expect(planAction("start", "create error", false)).toHaveProperty("refused");
    for (const s of VM_STATUSES.filter((x) => x.endsWith(" error"))) expect(planAction("delete", s, false)).toMatchObject({ during: "deleting" });
  });
});
