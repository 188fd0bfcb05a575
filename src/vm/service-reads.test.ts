import { describe, expect, it } from "vitest";
import { VmNotFoundError } from "./service.js";
import { readOnlyService, testSpec } from "./testing.js";

describe("VmService reads for renters", () => {
  it("getFor: the same frozen record while vms is unchanged, a new one after a write; another renter's VM is not found", () => {
    const { repo, vms } = readOnlyService();
    repo.insert({ id: "a1", nickname: "", owner: "alice", spec: testSpec("one"), status: "closed" }, []);
    const vm = vms.getFor("alice", "a1");
    expect(vms.getFor("alice", "a1")).toBe(vm);
    expect(Object.isFrozen(vm) && Object.isFrozen(vm.spec) && Object.isFrozen(vm.spec.ports.custom)).toBe(true);
    expect(() => vms.getFor("bob", "a1")).toThrow(VmNotFoundError);
    expect(() => vms.getFor("alice", "nope")).toThrow(VmNotFoundError);
    repo.update("a1", { status: "running" });
    const after = vms.getFor("alice", "a1");
    expect(after).not.toBe(vm);
    expect(after.status).toBe("running");
    // A VM created after a miss is found at once.
    repo.insert({ id: "nope", nickname: "", owner: "alice", spec: testSpec("two"), status: "creating" }, []);
    expect(vms.getFor("alice", "nope").status).toBe("creating");
    repo.delete("a1");
    expect(() => vms.getFor("alice", "a1")).toThrow(VmNotFoundError);
  });

  it("summariesFor: kept per renter until vms changes", () => {
    const { repo, vms } = readOnlyService();
    repo.insert({ id: "a1", nickname: "", owner: "alice", spec: testSpec("one"), status: "closed" }, []);
    const list = vms.summariesFor("alice");
    expect(vms.summariesFor("alice")).toBe(list);
    repo.setSystemDiskBytes("a1", 1);
    expect(vms.summariesFor("alice")).not.toBe(list);
  });
});
