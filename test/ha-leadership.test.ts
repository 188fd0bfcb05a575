/**
 * group/ha/leadership.ts against a real etcd (one member on loopback): a master's view of who leads
 * outlives a read of the election that etcd refuses while the lead changes hands. etcd3's observer
 * stops for good at its first error; a master kept naming the dead leader (and passing calls to it)
 * for ever. Here etcd refuses the read by having authentication turned on for a moment.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { Etcd3 } from "etcd3";
import { Leadership, type LeadershipEvents } from "../src/group/ha/leadership.js";
import { createLogger } from "../src/lib/logger.js";
import { EtcdCluster } from "./helpers/etcd.js";
import { removeDir, tempDir } from "./helpers/agent-process.js";
import { run } from "./helpers/netns.js";
import { until } from "./helpers/wait.js";

const skipReason = await run(["etcdctl", "version"]).then(() => null, () => "etcd is not installed (etcd-server, etcd-client)");

describe.skipIf(skipReason !== null)("ha: who leads, as a master sees it", () => {
  let dir: string;
  let cluster: EtcdCluster;
  const clients: Etcd3[] = [];
  const leaderships: Leadership[] = [];
  const log = createLogger({ level: "silent" });
  const etcdctl = (...args: string[]) => run(["etcdctl", "--endpoints", cluster.endpoints[0]!, ...args]);

  const candidate = (address: string, leader: LeadershipEvents["leader"] = () => undefined) => {
    const client = new Etcd3({ hosts: cluster.endpoints });
    clients.push(client);
    const leadership = new Leadership(client, { name: "/test/leader", ttlSeconds: 2, address, log, events: { elected: () => undefined, deposed: () => undefined, leader } });
    leaderships.push(leadership);
    return { client, leadership };
  };

  beforeAll(async () => {
    dir = tempDir("batu-ha-leadership-");
    cluster = await EtcdCluster.start({ ip: "127.0.0.1", dir: join(dir, "etcd"), size: 1 });
  }, 60_000);

  afterAll(async () => {
    await Promise.all(leaderships.map((l) => l.stop().catch(() => undefined)));
    for (const c of clients) c.close();
    await cluster?.stop();
    if (dir) removeDir(dir);
  });

  it("the leader dies while etcd refuses reads: once it answers again, the other master names itself, not the dead one", async () => {
    const a = candidate("A");
    await a.leadership.start();
    await until(() => a.leadership.leading, Boolean, 10_000, "A leads");
    let seenByB: string | undefined;
    const b = candidate("B", (address) => (seenByB = address));
    await b.leadership.start();
    expect(seenByB).toBe("A");

    // etcd refuses every read of B's (and A's) from now on.
    await etcdctl("user", "add", "root:batu-test");
    await etcdctl("user", "grant-role", "root", "root");
    await etcdctl("auth", "enable");
    // A dies: it renews its lease no more (its resignation is refused too), which runs out within 2 s.
    const keyOfA = a.leadership.key!;
    await a.leadership.stop();
    await until(async () => (await etcdctl("--user", "root:batu-test", "get", "--prefix", "election//test/leader/", "--keys-only")).stdout, (keys) => !keys.includes(keyOfA), 10_000, "A's key gone");
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await etcdctl("--user", "root:batu-test", "auth", "disable");

    await until(() => b.leadership.leading, Boolean, 15_000, "B leads");
    await until(() => seenByB, (address) => address === "B", 15_000, "B's view of who leads");
  }, 60_000);
});
