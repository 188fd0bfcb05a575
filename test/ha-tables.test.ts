/**
 * group/ha/replicated-tables.ts against a real etcd (one member on loopback): what one master writes
 * reaches another's copy; batches cost one etcd transaction per 127 keys, not one per write; a write
 * not fenced by a live leader key never reaches etcd and its reply hears so; a load makes a copy
 * exactly etcd's. And a master's connection to etcd over TLS with a client certificate.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { Etcd3 } from "etcd3";
import { openDb, type Db } from "../src/store/db.js";
import { ETCD_GRPC_OPTIONS, ReplicatedTables } from "../src/group/ha/replicated-tables.js";
import { EtcdCluster, makeEtcdTls, type EtcdTls } from "./helpers/etcd.js";
import { GroupHa } from "../src/group/ha/group-ha.js";
import type { GroupHaConfig } from "../src/api/host-ha.js";
import { createLogger } from "../src/lib/logger.js";
import { writeFileSync } from "node:fs";
import { removeDir, tempDir } from "./helpers/agent-process.js";
import { run } from "./helpers/netns.js";
import { until } from "./helpers/wait.js";

const skipReason = await run(["etcd", "--version"]).then(() => null, () => "etcd is not installed (etcd-server)");

const insertRental = (db: Db, node: string, renter: string) =>
  db
    .prepare("INSERT INTO rentals (node_id, renter_id, kind, wallets_json, threshold, granted_at, until) VALUES (?, ?, 'wallet', '[]', 1, ?, ?)")
    .run(node, renter, "2026-12-01T00:00:00.000Z", "2026-12-02T00:00:00.000Z");
const rentals = (db: Db) => db.prepare("SELECT id, node_id, renter_id, until FROM rentals ORDER BY id").all();
const nonces = (db: Db) => db.prepare("SELECT signer, nonce FROM used_nonces ORDER BY signer, nonce").all();

describe.skipIf(skipReason !== null)("ha: the group's tables replicated through etcd", () => {
  let dir: string;
  let cluster: EtcdCluster;
  let etcd: Etcd3;
  let leaderDb: Db, followerDb: Db;
  let leader: ReplicatedTables, follower: ReplicatedTables;
  const FENCE = "/test/leader-key";
  const fence = () => FENCE;
  const applied: string[][] = [];

  beforeAll(async () => {
    dir = tempDir("batu-ha-tables-");
    cluster = await EtcdCluster.start({ ip: "127.0.0.1", dir: join(dir, "etcd"), size: 1 });
    // As a master's client is (GroupHa.connect).
    etcd = new Etcd3({ hosts: cluster.endpoints, grpcOptions: ETCD_GRPC_OPTIONS });
    await etcd.put(FENCE).value("held");
    leaderDb = openDb(join(dir, "leader.db"));
    followerDb = openDb(join(dir, "follower.db"));
    leader = new ReplicatedTables(leaderDb, etcd, "/test/tables/");
    follower = new ReplicatedTables(followerDb, etcd, "/test/tables/");
    follower.onApplied((tables) => applied.push([...tables]));
    await leader.load();
    await follower.load();
    await follower.follow((e) => {
      throw e;
    });
  }, 60_000);

  afterAll(async () => {
    await leader?.close();
    await follower?.close();
    etcd?.close();
    await cluster?.stop();
    if (dir) removeDir(dir);
  });

  it("inserts, updates, deletes and a changed key reach the other copy, and its caches are told", async () => {
    insertRental(leaderDb, "node-a", "alice");
    insertRental(leaderDb, "node-b", "bob");
    leaderDb.prepare("UPDATE rentals SET until = ? WHERE renter_id = 'alice'").run("2026-12-03T00:00:00.000Z");
    leaderDb.prepare("DELETE FROM rentals WHERE renter_id = 'bob'").run();
    leaderDb.prepare("INSERT INTO used_nonces (signer, nonce, used_at) VALUES ('k1', 'n1', 'now'), ('k1', 'n2', 'now')").run();
    leaderDb.prepare("UPDATE used_nonces SET nonce = 'n3' WHERE nonce = 'n2'").run();
    expect(leader.pending()).toBe(true);
    await leader.settled(fence);
    expect(leader.pending()).toBe(false);
    await until(() => rentals(followerDb), (rows) => JSON.stringify(rows) === JSON.stringify(rentals(leaderDb)), 5_000, "the follower's rentals");
    await until(() => nonces(followerDb), (rows) => JSON.stringify(rows) === JSON.stringify([{ signer: "k1", nonce: "n1" }, { signer: "k1", nonce: "n3" }]), 5_000, "the follower's nonces");
    expect(applied.flat()).toEqual(expect.arrayContaining(["rentals", "used_nonces"]));
  });

  it("nonces wait for no reply; a batch of 300 is shipped in 3 transactions (127 keys each at most), not 300", async () => {
    const before = Number((await etcd.get(FENCE).exec()).header.revision);
    const insert = leaderDb.prepare("INSERT INTO used_nonces (signer, nonce, used_at) VALUES ('k2', ?, 'now')");
    leaderDb.transaction(() => {
      for (let i = 0; i < 300; i++) insert.run(`batch-${i}`);
    })();
    // A reply after nonces alone is not held: they go with the next batch.
    await leader.settled(fence);
    expect(leader.pending()).toBe(true);
    expect(Number((await etcd.get(FENCE).exec()).header.revision)).toBe(before);
    await leader.flush(fence);
    expect(leader.pending()).toBe(false);
    const after = Number((await etcd.get(FENCE).exec()).header.revision);
    expect(after - before).toBe(3);
    await until(() => nonces(followerDb).length, (n) => n === 302, 5_000, "the follower's 302 nonces");
  });

  it("a nonce a follower burnt itself stays in its copy; the leader's row of the same nonce, from etcd, replaces it", async () => {
    const usedAt = (nonce: string) => followerDb.prepare("SELECT used_at FROM used_nonces WHERE signer = 'k3' AND nonce = ?").all(nonce);
    // A follower answering a renter call itself: the row is its own, never shipped (its replies drop the outbox).
    followerDb.prepare("INSERT INTO used_nonces (signer, nonce, used_at) VALUES ('k3', 'own', 'by the follower')").run();
    follower.discardPending();
    expect(follower.pending()).toBe(false);
    expect(await etcd.getAll().prefix('/test/tables/used_nonces/["k3"').keys()).toEqual([]);
    // A replay through the leader: it burns the same nonce and ships it; the watch applies it over the follower's row.
    leaderDb.prepare("INSERT INTO used_nonces (signer, nonce, used_at) VALUES ('k3', 'own', 'by the leader')").run();
    await leader.flush(fence);
    await until(() => usedAt("own"), (rows) => JSON.stringify(rows) === JSON.stringify([{ used_at: "by the leader" }]), 5_000, "the leader's row in the follower's copy");
    // The copy still follows (the watch took the change without failing).
    leaderDb.prepare("INSERT INTO used_nonces (signer, nonce, used_at) VALUES ('k3', 'later', 'by the leader')").run();
    await leader.flush(fence);
    await until(() => usedAt("later"), (rows) => rows.length === 1, 5_000, "a later nonce in the follower's copy");
  });

  it("a write fenced by a leader key that is gone is refused, and reaches neither etcd nor the other copy", async () => {
    await etcd.delete().key(FENCE);
    insertRental(leaderDb, "node-c", "carol");
    await expect(leader.settled(fence)).rejects.toThrow(/lost the lead/);
    expect(await etcd.getAll().prefix("/test/tables/rentals/").keys()).toHaveLength(1);
    expect(JSON.stringify(rentals(followerDb))).not.toContain("carol");
    await etcd.put(FENCE).value("held");
  });

  it("the first master brings its own tables (a lone master turned HA loses nothing); a later one brings none", async () => {
    const first = openDb(join(dir, "first.db"));
    const later = openDb(join(dir, "later.db"));
    insertRental(first, "node-s", "sam");
    insertRental(first, "node-t", "tess");
    first.prepare("INSERT INTO used_nonces (signer, nonce, used_at) VALUES ('k9', 'n9', 'now')").run();
    insertRental(later, "node-u", "uma");
    const a = new ReplicatedTables(first, etcd, "/seed/tables/");
    const b = new ReplicatedTables(later, etcd, "/seed/tables/");
    expect(await a.seed("/seed/seeded", "first")).toBe(3);
    expect(await b.seed("/seed/seeded", "later")).toBe(0);
    await a.load();
    await b.load();
    expect(rentals(later)).toEqual(rentals(first));
    expect(JSON.stringify(rentals(later))).toContain("tess");
    expect(JSON.stringify(rentals(later))).not.toContain("uma");
    expect(nonces(later)).toEqual([{ signer: "k9", nonce: "n9" }]);
    await a.close();
    await b.close();
  });

  it("a load makes a copy exactly etcd's: the write never shipped is gone", async () => {
    expect(JSON.stringify(rentals(leaderDb))).toContain("carol");
    await leader.load();
    expect(rentals(leaderDb)).toEqual(rentals(followerDb));
    expect(JSON.stringify(rentals(leaderDb))).not.toContain("carol");
    expect(leader.pending()).toBe(false);
  });

  it("a master that stops leading tells the replies still waiting (their writes dropped, never shipped); the one in flight is shipped", async () => {
    insertRental(leaderDb, "node-d", "dave");
    const shipping = leader.settled(fence);
    // Written while the first batch is on its way: it waits for the next one.
    insertRental(leaderDb, "node-e", "erin");
    const next = leader.settled(fence);
    // Deposed meanwhile (GroupHa drops a follower's own writes): the next batch will never be.
    leader.discardPending();
    const outcome = (p: Promise<void>) => Promise.race([p.then(() => "shipped", (e: Error) => `refused: ${e.message}`), new Promise((r) => setTimeout(() => r("still waiting"), 5_000))]);
    const [first, second] = await Promise.all([outcome(shipping), outcome(next)]);
    expect(first).toBe("shipped");
    expect(second).toMatch(/^refused: .*no longer leads/);
    await until(() => JSON.stringify(rentals(followerDb)), (rows) => rows.includes("dave"), 5_000, "the shipped rental on the other copy");
    expect(JSON.stringify(rentals(followerDb))).not.toContain("erin");
    await leader.load();
    expect(JSON.stringify(rentals(leaderDb))).not.toContain("erin");
  });

  describe("tables larger than one gRPC message (4 MiB by default)", () => {
    // 24,000 nonces of a renter call's size (a 48-character signer, 54 hex characters): ~7 MiB in etcd.
    const ROWS = 24_000;
    const signer = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
    const count = (db: Db) => (db.prepare("SELECT COUNT(*) AS n FROM used_nonces").get() as { n: number }).n;
    let writerDb: Db, behindDb: Db;
    let writer: ReplicatedTables, behind: ReplicatedTables;

    beforeAll(async () => {
      writerDb = openDb(join(dir, "big-writer.db"));
      behindDb = openDb(join(dir, "big-behind.db"));
      writer = new ReplicatedTables(writerDb, etcd, "/big/tables/");
      behind = new ReplicatedTables(behindDb, etcd, "/big/tables/");
      await writer.load();
      // This copy stays at the revision before the writes (a master whose watch was down meanwhile).
      await behind.load();
      const insert = writerDb.prepare("INSERT INTO used_nonces (signer, nonce, used_at) VALUES (?, ?, ?)");
      writerDb.transaction(() => {
        for (let i = 0; i < ROWS; i++) insert.run(signer, i.toString(16).padStart(54, "0"), "2026-12-01T04:00:00.000Z");
      })();
      await writer.flush(fence);
    }, 120_000);

    afterAll(async () => {
      await writer?.close();
      await behind?.close();
    });

    it("a master loads them whole (a new leader must, and a master starting): read in pages of one revision", async () => {
      const fresh = openDb(join(dir, "big-fresh.db"));
      const copy = new ReplicatedTables(fresh, etcd, "/big/tables/");
      const revision = await copy.load();
      expect(count(fresh)).toBe(ROWS);
      expect(revision).toBe(writer.revision);
      expect(fresh.prepare("SELECT nonce FROM used_nonces ORDER BY nonce DESC LIMIT 1").get()).toEqual({ nonce: (ROWS - 1).toString(16).padStart(54, "0") });
      await copy.close();
    });

    it("a copy behind catches up through its watch (etcd sends the missed revisions in one message)", async () => {
      const errors: Error[] = [];
      await behind.follow((e) => errors.push(e));
      await until(() => (errors.length ? -1 : count(behindDb)), (n) => n === ROWS || n === -1, 30_000, "the copy behind, caught up");
      expect(errors.map((e) => e.message)).toEqual([]);
      expect(count(behindDb)).toBe(ROWS);
    });
  });
});

describe.skipIf(skipReason !== null)("ha: etcd over TLS, with client certificates", () => {
  let dir: string;
  let cluster: EtcdCluster;
  let tls: EtcdTls;
  const log = createLogger({ level: "silent" });
  const config = (extra: Partial<GroupHaConfig> = {}): GroupHaConfig => ({ etcd_endpoints: cluster.endpoints, ...extra });

  beforeAll(async () => {
    dir = tempDir("batu-ha-tls-");
    tls = await makeEtcdTls(join(dir, "pki"), "127.0.0.1");
    cluster = await EtcdCluster.start({ ip: "127.0.0.1", dir: join(dir, "etcd"), size: 1, tls });
  }, 60_000);

  afterAll(async () => {
    await cluster?.stop();
    if (dir) removeDir(dir);
  });

  it("a master with the CA and its client certificate connects and shares its identity", async () => {
    writeFileSync(join(dir, "admin.token"), "operator-token\n");
    const ha = await GroupHa.connect(config({ etcd_ca_file: "pki/ca.crt", etcd_cert_file: "pki/client.crt", etcd_key_file: "pki/client.key" }), "tlsgroup", dir, log);
    try {
      expect(await ha.shareIdentity(dir)).toEqual([]);
    } finally {
      await ha.close();
    }
  });

  it("without a client certificate etcd refuses the master, which says it cannot reach etcd", async () => {
    await expect(GroupHa.connect(config({ etcd_ca_file: "pki/ca.crt" }), "tlsgroup", dir, log)).rejects.toThrow(/group_ha: etcd at https:\/\/127\.0\.0\.1:\d+ cannot be reached/);
  });

  it("https endpoints without a CA, or a certificate without its key, are configuration errors naming the field", async () => {
    await expect(GroupHa.connect(config(), "tlsgroup", dir, log)).rejects.toThrow(/field "group_ha.etcd_ca_file" is required with https/);
    await expect(GroupHa.connect(config({ etcd_ca_file: "pki/ca.crt", etcd_cert_file: "pki/client.crt" }), "tlsgroup", dir, log)).rejects.toThrow(/etcd_key_file go together/);
    await expect(GroupHa.connect(config({ etcd_ca_file: "pki/missing.crt" }), "tlsgroup", dir, log)).rejects.toThrow(/field "group_ha.etcd_ca_file" cannot be read/);
  });
});
