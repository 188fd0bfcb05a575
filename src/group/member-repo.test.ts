import { describe, expect, it } from "vitest";
import { openDb, prepared } from "../store/db.js";
import { GroupMemberRepo } from "./member-repo.js";

describe("GroupMemberRepo", () => {
  const t0 = new Date("2026-01-01T00:00:00Z");
  const t1 = new Date("2026-01-01T00:01:00Z");
  it("re-joining by node id updates the record and moves the address", () => {
    const repo = new GroupMemberRepo(openDb(":memory:"));
    repo.upsert({ address: "10.0.0.1:10000", nodeId: "a".repeat(64), nickname: "one" }, t0);
    repo.upsert({ address: "10.0.0.2:10000", nodeId: "a".repeat(64) }, t1);
    expect(repo.list()).toEqual([
      {
        address: "10.0.0.2:10000",
        nodeId: "a".repeat(64),
        nickname: "one",
        joinedAt: t0.toISOString(),
        lastSeen: t1.toISOString(),
        capacity: null,
        vmCount: null,
        tls: null,
      },
    ]);
  });
  it("keeps the TLS endpoint pinned for a node id: a join or heartbeat naming one replaces it, another node never inherits it", () => {
    const repo = new GroupMemberRepo(openDb(":memory:"));
    const [first, second] = [{ port: 10443, sha256: "1".repeat(64) }, { port: 20443, sha256: "2".repeat(64) }];
    repo.upsert({ address: "10.0.0.1:10000", nodeId: "a".repeat(64), tls: first }, t0);
    repo.upsert({ address: "10.0.0.1:10000", nodeId: "a".repeat(64) }, t1);
    expect(repo.byNodeId("a".repeat(64))?.tls).toEqual(first);
    repo.heartbeat("a".repeat(64), { address: "10.0.0.1:10000", nickname: "", capacity: {}, vmCount: 0 }, t1);
    expect(repo.byNodeId("a".repeat(64))?.tls).toEqual(first);
    repo.heartbeat("a".repeat(64), { address: "10.0.0.1:10000", nickname: "", capacity: {}, vmCount: 0, tls: second }, t1);
    expect(repo.byNodeId("a".repeat(64))?.tls).toEqual(second);
    // The operator records another node at that address by hand: it names no certificate, and gets none.
    repo.upsert({ address: "10.0.0.1:10000", nodeId: "b".repeat(64) }, t1);
    expect(repo.byNodeId("b".repeat(64))?.tls).toBeNull();
  });
  it("a heartbeat updates a known member's address, capacity and last_seen; unknown nodes are not added", () => {
    const repo = new GroupMemberRepo(openDb(":memory:"));
    repo.upsert({ address: "10.0.0.1:10000", nodeId: "a".repeat(64) }, t0);
    repo.upsert({ address: "10.0.0.9:10000" }, t0);
    const capacity = { cpu_threads: 8, vm_count: 2 };
    // Moving onto the address a stale record holds: that record gives way.
    expect(repo.heartbeat("a".repeat(64), { address: "10.0.0.9:10000", nickname: "n", capacity, vmCount: 2 }, t1)).toBe(true);
    expect(repo.list()).toEqual([
      expect.objectContaining({ address: "10.0.0.9:10000", nickname: "n", lastSeen: t1.toISOString(), capacity, vmCount: 2 }),
    ]);
    expect(repo.heartbeat("b".repeat(64), { address: "10.0.0.3:10000", nickname: "", capacity, vmCount: 0 }, t1)).toBe(false);
    expect(repo.list()).toHaveLength(1);
  });
  it("remove by node id or by address; the removed record is returned once", () => {
    const repo = new GroupMemberRepo(openDb(":memory:"));
    repo.upsert({ address: "10.0.0.1:10000", nodeId: "a".repeat(64) }, t0);
    repo.upsert({ address: "10.0.0.2:10000" }, t0);
    expect(repo.remove({ nodeId: "a".repeat(64) })?.address).toBe("10.0.0.1:10000");
    expect(repo.remove({ nodeId: "a".repeat(64) })).toBeUndefined();
    expect(repo.remove({ address: "10.0.0.2:10000" })?.nodeId).toBeNull();
    expect(repo.list()).toEqual([]);
  });
  it("a node taking over an address replaces the stale record there", () => {
    const repo = new GroupMemberRepo(openDb(":memory:"));
    repo.upsert({ address: "10.0.0.1:10000", nodeId: "a".repeat(64) }, t0);
    repo.upsert({ address: "10.0.0.2:10000", nodeId: "b".repeat(64) }, t0);
    repo.upsert({ address: "10.0.0.1:10000", nodeId: "b".repeat(64) }, t1);
    expect(repo.list().map((m) => [m.address, m.nodeId])).toEqual([["10.0.0.1:10000", "b".repeat(64)]]);
  });
  it("members without a node id are keyed by address", () => {
    const repo = new GroupMemberRepo(openDb(":memory:"));
    repo.upsert({ address: "10.0.0.1:10000" }, t0);
    repo.upsert({ address: "10.0.0.1:10000", nickname: "x" }, t1);
    expect(repo.list()).toHaveLength(1);
    expect(repo.list()[0]!.nickname).toBe("x");
  });
  it("a heartbeat that changes nothing but last_seen and capacity is kept in memory (every read sees it) and written in one batch", () => {
    const db = openDb(":memory:");
    const repo = new GroupMemberRepo(db);
    const node = "a".repeat(64);
    const stored = () => prepared(db, "SELECT last_seen, vm_count, address FROM group_members WHERE node_id = ?").get(node);
    repo.upsert({ address: "10.0.0.1:10000", nodeId: node, nickname: "one" }, t0);
    expect(repo.heartbeat(node, { address: "10.0.0.1:10000", nickname: "one", capacity: { vm_count: 3 }, vmCount: 3 }, t1)).toBe(true);
    expect(stored()).toEqual({ last_seen: t0.toISOString(), vm_count: null, address: "10.0.0.1:10000" });
    expect(repo.byNodeId(node)).toMatchObject({ lastSeen: t1.toISOString(), vmCount: 3, capacity: { vm_count: 3 } });
    expect(repo.list()[0]).toMatchObject({ lastSeen: t1.toISOString(), vmCount: 3 });
    repo.flush();
    expect(stored()).toEqual({ last_seen: t1.toISOString(), vm_count: 3, address: "10.0.0.1:10000" });
    // A new address is written at once, with the beat that brought it.
    const t2 = new Date("2026-01-01T00:02:00Z");
    repo.heartbeat(node, { address: "10.0.0.9:10000", nickname: "one", capacity: { vm_count: 4 }, vmCount: 4 }, t2);
    expect(stored()).toEqual({ last_seen: t2.toISOString(), vm_count: 4, address: "10.0.0.9:10000" });
    // A removed member's beat kept in memory never comes back with a flush.
    repo.heartbeat(node, { address: "10.0.0.9:10000", nickname: "one", capacity: {}, vmCount: 4 }, t2);
    expect(repo.remove({ nodeId: node })?.lastSeen).toBe(t2.toISOString());
    repo.flush();
    expect(repo.list()).toEqual([]);
  });
  it("hands out the same record until the member changes: across reads and a flush; a new one after its heartbeat or a join", () => {
    const db = openDb(":memory:");
    const repo = new GroupMemberRepo(db);
    const [a, b] = ["a".repeat(64), "b".repeat(64)];
    repo.upsert({ address: "10.0.0.1:10000", nodeId: a }, t0);
    repo.upsert({ address: "10.0.0.2:10000", nodeId: b }, t0);
    const [ra, rb] = repo.list();
    expect(repo.list()[0]).toBe(ra);
    expect(Object.isFrozen(ra)).toBe(true);
    repo.heartbeat(a, { address: "10.0.0.1:10000", nickname: "", capacity: { vm_count: 1 }, vmCount: 1 }, t1);
    const beaten = repo.list()[0]!;
    expect(beaten).not.toBe(ra);
    expect([beaten.lastSeen, repo.list()[1]]).toEqual([t1.toISOString(), rb]);
    expect(repo.byNodeId(a)).toBe(beaten);
    // Written out: the same records, and what a fresh read of the table gives.
    repo.flush();
    expect(repo.list()).toEqual([beaten, rb]);
    expect(repo.list()[0]).toBe(beaten);
    expect(new GroupMemberRepo(db).list()).toEqual([beaten, rb]);
    repo.heartbeat(a, { address: "10.0.0.1:10000", nickname: "", capacity: { vm_count: 2 }, vmCount: 2 }, t1);
    expect(repo.list()[0]!.vmCount).toBe(2);
    repo.upsert({ address: "10.0.0.3:10000", nodeId: "c".repeat(64) }, t1);
    expect(repo.list().map((r) => r.address)).toEqual(["10.0.0.1:10000", "10.0.0.2:10000", "10.0.0.3:10000"]);
  });
});
