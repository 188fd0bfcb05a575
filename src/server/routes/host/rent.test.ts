import { afterAll, beforeAll, describe, expect, it } from "vitest";
import Fastify, { type FastifyInstance } from "fastify";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { RentalLedger } from "../../../auth/rental-ledger.js";
import { cryptoWaitReady, testWallet, type TestWallet } from "../../../auth/testing.js";
import { openDb } from "../../../store/db.js";
import { authHook } from "../../auth.js";
import { errorHandler } from "../../errors.js";
import { rentRoutes } from "./rent.js";

const ADMIN = "admin-token-0123456789";
const NODE = "e".repeat(64);
const t0 = new Date("2026-01-01T00:00:00Z");
let clock = t0;
let app: FastifyInstance;
let alice: TestWallet, bob: TestWallet;

beforeAll(async () => {
  await cryptoWaitReady();
  alice = testWallet("//alice");
  bob = testWallet("//bob");
  app = Fastify({ ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } } }).withTypeProvider<TypeBoxTypeProvider>();
  app.setErrorHandler(errorHandler);
  app.addHook("onRequest", authHook({ adminToken: () => ADMIN }));
  await app.register(rentRoutes, { deps: { rentals: new RentalLedger(openDb(":memory:")), now: () => clock, nodeGpus: async () => 8 } });
  await app.ready();
});
afterAll(async () => {
  await app.close();
});

const post = (url: string, payload: object, token = ADMIN) =>
  app.inject({ method: "POST", url, payload, headers: { authorization: `Bearer ${token}` } });
const get = (url: string) => app.inject({ method: "GET", url, headers: { authorization: `Bearer ${ADMIN}` } });

describe("/common/rent/*", () => {
  it("needs the admin token", async () => {
    expect((await app.inject({ method: "GET", url: "/common/rent/list" })).statusCode).toBe(401);
    expect((await post("/common/rent/grant", {}, "join-token-0123456789")).statusCode).toBe(401);
  });

  it("grants, lists with state, revokes", async () => {
    clock = t0;
    const grant = await post("/common/rent/grant", { node_id: NODE, wallet: alice.publicKeyHex, until: "2026-01-02T00:00:00Z" });
    expect(grant.statusCode).toBe(200);
    expect(grant.json()).toEqual({
      message: "ok",
      rental: {
        id: 1,
        node_id: NODE,
        renter: alice.address,
        wallet: alice.address,
        granted_at: t0.toISOString(),
        until: "2026-01-02T00:00:00.000Z",
        revoked_at: null,
        state: "active",
        gpus: null,
        cpu_cores: null,
        mem_gib: null,
        disk_gib: null,
        disk_iops: null,
        disk_mbps: null,
        net_mbit: null,
      },
    });
    const taken = await post("/common/rent/grant", { node_id: NODE, wallet: bob.address, until: "2026-01-03T00:00:00+02:00" });
    expect([taken.statusCode, taken.json().message]).toEqual([409, expect.stringMatching(/^node_id: node e+ is rented to/)]);
    clock = new Date("2026-01-02T01:00:00Z");
    expect((await get("/common/rent/list")).json().rentals.map((r: { state: string }) => r.state)).toEqual(["expired"]);
    const ms = await post("/common/rent/grant", {
      node_id: NODE,
      multisig_accounts: { wallets: [alice.address, bob.address], threshold: "2" },
      until: "2026-01-05T00:00:00Z",
    });
    expect(ms.json().rental).toMatchObject({ id: 2, multisig_accounts: { wallets: [alice.address, bob.address], threshold: 2 }, state: "active" });
    expect((await get(`/common/rent/list?state=active&node_id=${NODE}`)).json().rentals.map((r: { id: number }) => r.id)).toEqual([2]);
    const revoked = await post("/common/rent/revoke", { id: "2" });
    expect(revoked.json().rental).toMatchObject({ id: 2, state: "revoked", revoked_at: clock.toISOString() });
    expect((await post("/common/rent/revoke", { node_id: NODE, wallet: alice.address })).statusCode).toBe(404);
    expect((await post("/common/rent/revoke", { id: 77 })).json()).toEqual({ message: "id: no such rental: 77" });
  });

  it("names the field of a bad request (400)", async () => {
    clock = t0;
    const until = "2026-06-01T00:00:00Z";
    const cases: [object, string | RegExp][] = [
      [{ node_id: NODE, until }, "wallet: is required (or multisig_accounts)"],
      [{ node_id: NODE, wallet: "5Nope", until }, "wallet: is not an SS58 address or a 64-hex public key"],
      [{ node_id: NODE, wallet: alice.address, multisig_accounts: { wallets: [alice.address, bob.address], threshold: 1 }, until }, "wallet: give either wallet or multisig_accounts, not both"],
      [{ node_id: "xyz", wallet: alice.address, until }, /^node_id: /],
      [{ node_id: NODE, wallet: alice.address, until: "tomorrow" }, /^until: /],
      [{ node_id: NODE, wallet: alice.address, until: "2025-01-01T00:00:00Z" }, "until: must be in the future"],
      [{ node_id: NODE, wallet: alice.address }, "until: is required"],
      [{ node_id: NODE, wallet: alice.address, until, extra: 1 }, "extra: is not a known field"],
      [{ node_id: NODE, multisig_accounts: { wallets: [alice.address, bob.address], threshold: 3 }, until }, "multisig_accounts.threshold: must be between 1 and 2 (the number of wallets)"],
    ];
    for (const [payload, message] of cases) {
      const res = await post("/common/rent/grant", payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().message).toMatch(message);
    }
    expect((await post("/common/rent/revoke", {})).json()).toEqual({ message: "id: is required (or node_id with wallet or multisig_accounts)" });
  });
  it("rents a node by GPU to several renters, never beyond its GPUs, and never beside a whole-node renter", async () => {
    clock = t0;
    const node = "d".repeat(64);
    const carol = testWallet("//carol");
    const grant = (wallet: string, extra: Record<string, unknown>) => post("/common/rent/grant", { node_id: node, wallet, until: "2026-01-02T00:00:00Z", ...extra });
    const a = await grant(alice.address, { gpus: 4, cpu_cores: 16, mem_gib: 64 });
    expect(a.statusCode).toBe(200);
    expect(a.json().rental).toMatchObject({ gpus: 4, cpu_cores: 16, mem_gib: 64, disk_gib: null });
    expect((await grant(bob.address, { gpus: 4 })).statusCode).toBe(200);
    // The node has 8 GPUs (nodeGpus): no ninth.
    const over = await grant(carol.address, { gpus: 1 });
    expect([over.statusCode, over.json().message]).toEqual([409, expect.stringMatching(/^gpus: node d+ has 8 GPUs, 8 of them rented to others: 0 left/)]);
    const whole = await grant(carol.address, {});
    expect([whole.statusCode, whole.json().message]).toEqual([409, expect.stringMatching(/is rented to .* 4 GPUs\); revoke it first/)]);
    expect((await grant(alice.address, { gpus: 0 })).statusCode).toBe(400);
    // Extended without saying what it gives: the rental keeps its GPUs and caps.
    const longer = await post("/common/rent/grant", { node_id: node, wallet: alice.address, until: "2026-01-05T00:00:00Z" });
    expect(longer.json().rental).toMatchObject({ until: "2026-01-05T00:00:00.000Z", gpus: 4, cpu_cores: 16, mem_gib: 64 });
  });

  it("caps each of a renter's VMs' disk I/O and network, kept when the grant is extended", async () => {
    clock = t0;
    const node = "e".repeat(64);
    const grant = (extra: Record<string, unknown>) => post("/common/rent/grant", { node_id: node, wallet: alice.address, until: "2026-01-02T00:00:00Z", ...extra });
    const a = await grant({ disk_iops: 800, disk_mbps: 50, net_mbit: 100 });
    expect(a.json().rental).toMatchObject({ disk_iops: 800, disk_mbps: 50, net_mbit: 100, gpus: null });
    const b = await grant({ net_mbit: 20 });
    expect(b.json().rental).toMatchObject({ disk_iops: 800, disk_mbps: 50, net_mbit: 20 });
    for (const [field, value] of [["disk_iops", 0], ["disk_mbps", 1.5], ["net_mbit", "100"]] as const) {
      const bad = await grant({ [field]: value });
      expect([bad.statusCode, bad.json().message]).toEqual([400, expect.stringContaining(field)]);
    }
  });
});
