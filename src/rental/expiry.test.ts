import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { RentalTerms } from "../auth/rental-ledger.js";
import { createLogger } from "../lib/logger.js";
import { testCreateRequest, testVms, type TestVms } from "../vm/testing.js";
import { RentalExpiry, type ExpiringVms } from "./expiry.js";

const HOUR = 3600_000;
const T0 = Date.parse("2026-06-01T12:00:00.000Z");
const iso = (ms: number) => new Date(ms).toISOString();

let vms: TestVms;
/** The VM layer as the agent hands it to the expiry. */
const expiringVms = (): ExpiringVms => ({
  list: () => vms.queries.list(),
  isLive: (id) => vms.queries.isLive(id),
  act: (id, action) => vms.service.act(id, action),
  setRentalEnd: (id, end) => vms.repo.setRentalEnd(id, end),
  log: (id, line) => vms.repo.log(id, line),
});
let clock: number;
let terms: RentalTerms | undefined;
let expiry: RentalExpiry;

beforeEach(async () => {
  vms = await testVms({ shutdownTimeoutMs: 300 });
  clock = T0;
  terms = new Map();
  expiry = new RentalExpiry({
    vms: expiringVms(),
    terms: () => terms,
    retentionMs: 10 * 24 * HOUR,
    log: createLogger({ level: "silent" }),
    now: () => new Date(clock),
  });
});
afterEach(async () => {
  expiry.stop();
  await vms.close();
});

const status = (id: string) => vms.repo.get(id)?.status;
const live = (id: string) => vms.queries.isLive(id);
const logOf = (id: string) => vms.repo.logLines(id, { from: "head", count: 100 }).join("\n");

describe("RentalExpiry", () => {
  it("shuts an ended renter's VMs down once, deletes them after the retention, and never touches others'", async () => {
    for (const [id, owner] of [["a", "alice"], ["b", "bob"], ["op", null], ["c", "carol"]] as const) {
      await vms.service.create(testCreateRequest(id, { owner }), { wait: true });
    }
    terms = new Map([
      ["alice", iso(T0 + HOUR)],
      ["bob", iso(T0 - 60_000)],
    ]);
    await expiry.sweep();
    // bob's rental is over: shut down, and it says so; alice still rents; the operator's VM and a
    // VM whose owner the ledger does not name are left alone.
    expect(status("b")).toBe("closed");
    expect(live("b")).toBe(false);
    expect(vms.repo.get("b")?.rentalEnd).toEqual({ endedAt: iso(T0 - 60_000), stoppedAt: iso(T0) });
    expect(logOf("b")).toContain(`rental ended at ${iso(T0 - 60_000)}: the VM is shut down, and deleted at ${iso(T0 - 60_000 + 240 * HOUR)}`);
    expect(["a", "op", "c"].map(live)).toEqual([true, true, true]);
    expect(["a", "op", "c"].map((id) => vms.repo.get(id)?.rentalEnd)).toEqual([null, null, null]);

    // The operator starts bob's VM again (to save its data): the next sweeps leave it running.
    await vms.service.act("b", "start");
    await expiry.sweep();
    expect(live("b")).toBe(true);

    // alice's rental runs out: her VM goes down too.
    clock = T0 + HOUR + 1;
    await expiry.sweep();
    expect(live("a")).toBe(false);
    expect(vms.repo.get("a")?.rentalEnd?.endedAt).toBe(iso(T0 + HOUR));

    // She rents the node again before the retention is over: her VM is kept (not restarted).
    terms.set("alice", iso(T0 + 100 * HOUR));
    await expiry.sweep();
    expect(vms.repo.get("a")?.rentalEnd).toBeNull();
    expect(logOf("a")).toContain(`rented again until ${iso(T0 + 100 * HOUR)}: the VM is kept`);

    // Ten days after bob's rental ended, his VM is deleted; nobody else's is.
    clock = T0 - 60_000 + 240 * HOUR + 1;
    await expiry.sweep();
    expect(vms.repo.get("b")).toBeUndefined();
    expect(vms.queries.list().map((v) => v.id).sort()).toEqual(["a", "c", "op"]);
  });

  it("acts on nothing while the terms are unknown (a member before its master's first answer)", async () => {
    await vms.service.create(testCreateRequest("b", { owner: "bob" }), { wait: true });
    terms = undefined;
    clock = T0 + 1000 * HOUR;
    await expiry.sweep();
    expect(live("b")).toBe(true);
    expect(vms.repo.get("b")?.rentalEnd).toBeNull();
  });

  it("picks up a shutdown an agent crash cut short, and a VM shut off already is only marked", async () => {
    await vms.service.create(testCreateRequest("b", { owner: "bob" }), { wait: true });
    await vms.service.create(testCreateRequest("d", { owner: "bob" }), { wait: true });
    await vms.service.act("d", "poweroff");
    // As a crash leaves it: the end recorded, the shutdown not done.
    vms.repo.setRentalEnd("b", { endedAt: iso(T0 - 1), stoppedAt: null });
    terms = new Map([["bob", iso(T0 - 1)]]);
    await expiry.sweep();
    expect(live("b")).toBe(false);
    expect(vms.repo.get("b")?.rentalEnd).toEqual({ endedAt: iso(T0 - 1), stoppedAt: iso(T0) });
    expect(vms.repo.get("d")?.rentalEnd).toEqual({ endedAt: iso(T0 - 1), stoppedAt: iso(T0) });
    expect(vms.hypervisor.started).toHaveLength(2);
  });

  it("sweeps at the moment a rental ends (for a VM created after the last sweep too), and at once when poked", async () => {
    // A real clock here: the rental ends 800 ms from now, and the timer must find it.
    const realExpiry = new RentalExpiry({
      vms: expiringVms(),
      terms: () => terms,
      retentionMs: 10 * 24 * HOUR,
      log: createLogger({ level: "silent" }),
    });
    terms = new Map([["bob", iso(Date.now() + 800)]]);
    realExpiry.start();
    await vms.service.create(testCreateRequest("b", { owner: "bob" }), { wait: true });
    expect(live("b")).toBe(true);
    try {
      const deadline = Date.now() + 5000;
      while (live("b") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(live("b")).toBe(false);
      // Rented again, then revoked: a poke sweeps at once (no minute's wait).
      await vms.service.act("b", "start");
      terms = new Map([["bob", iso(Date.now() + HOUR)]]);
      realExpiry.poke();
      while (vms.repo.get("b")?.rentalEnd !== null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      terms = new Map([["bob", iso(Date.now() - 1)]]);
      realExpiry.poke();
      while (live("b") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(live("b")).toBe(false);
    } finally {
      realExpiry.stop();
    }
  });
});
