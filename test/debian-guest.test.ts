import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { execFile } from "node:child_process";
import { call, TestAgents, type AgentProcess } from "./helpers/agent-process.js";
import { until } from "./helpers/wait.js";
import { DbcClient } from "./helpers/dbc-client.js";
import { endVmTests, grantNode } from "./helpers/vm.js";

/*
 * The Debian 12 cloud guest (images/debian, built by scripts/setup.sh) as a DBC renter gets it:
 * `tasks/start` boots it (under TCG here, about a minute), cloud-init takes the task's login user
 * and password from the NoCloud seed batu hands it, and the renter logs in over the forwarded
 * `ssh_port` with the password `tasks/<id>` shows. Its guest agent answers: `tasks/passwd` changes
 * the password, and a live snapshot freezes its filesystems for the copy's instant.
 */
const IMAGE = "debian-12.qcow2";
const agents = new TestAgents();
let agent: AgentProcess;
let dbc: DbcClient;
let taskId: string;
let ssh: { port: number; user: string; password: string };
const alice = () => DbcClient.wallet("//batu-debian-alice");

/** Runs `command` in the guest over SSH with a password (sshpass); resolves with its output, or rejects. */
function sshRun(password: string, command: string): Promise<string> {
  const args = [
    "-e", "ssh",
    "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
    "-o", "ConnectTimeout=15", "-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password",
    "-p", String(ssh.port), `${ssh.user}@127.0.0.1`, command,
  ];
  return new Promise((resolve, reject) => {
    execFile("sshpass", args, { env: { ...process.env, SSHPASS: password }, timeout: 60_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`ssh ${command}: ${err.message} ${stderr}`)) : resolve(stdout.trim()),
    );
  });
}

beforeAll(async () => {
  await cryptoWaitReady();
  agent = await agents.start({ extraArgs: ["--shutdown-timeout", "30"] });
  dbc = new DbcClient(agent.url, agent.nodeId);
  await grantNode(agent, alice().address);
  const r = await dbc.call("tasks/start", DbcClient.signed(alice()), {
    image_name: IMAGE,
    operation_system: "linux",
    bios_mode: "legacy",
    cpu_cores: "1",
    mem_size: "1",
    disk_size: "1",
  });
  expect(r.body.errcode, JSON.stringify(r.body)).toBe(0);
  taskId = r.body.message.task_id;
  // cloud-init's first boot under TCG: most of a minute on an idle machine.
  const ready = await until(() => dbc.call(`tasks/${taskId}`, DbcClient.signed(alice())), (t) => t.body.message?.ready === true, 240_000, "debian guest ready", 1000);
  const detail = ready.body.message;
  ssh = { port: Number(detail.ssh_port), user: detail.user_name, password: detail.login_password };
}, 300_000);
afterAll(async () => {
  await endVmTests(agent);
  await agents.cleanup();
}, 120_000);

describe("the Debian 12 cloud guest", () => {
  it("takes the task's login user and password from batu's seed: the renter logs in over ssh_port", async () => {
    expect(ssh.user).toBe("dbc");
    expect(ssh.password.length).toBeGreaterThanOrEqual(8);
    const out = await sshRun(ssh.password, "id -un; sudo -n true && echo sudo-ok; cloud-init status");
    expect(out.split("\n")).toEqual(["dbc", "sudo-ok", "status: done"]);
    await expect(sshRun(`${ssh.password}-wrong`, "true")).rejects.toThrow();
  }, 120_000);

  it("tasks/passwd changes the password through the guest agent: the new one logs in, the old one no longer", async () => {
    const fresh = "Debian-N3w-Passw0rd";
    const r = await dbc.call(`tasks/passwd/${taskId}`, DbcClient.signed(alice()), { username: ssh.user, password: fresh });
    expect(r.body, JSON.stringify(r.body)).toMatchObject({ errcode: 0 });
    expect(await sshRun(fresh, "id -un")).toBe("dbc");
    await expect(sshRun(ssh.password, "true")).rejects.toThrow();
    ssh.password = fresh;
  }, 120_000);

  it("a live snapshot freezes the guest's filesystems through its agent for the copy's instant; the guest runs on", async () => {
    await sshRun(ssh.password, "echo written-before > /home/dbc/marker && sync");
    const r = await dbc.call(`snapshot/create/${taskId}`, DbcClient.signed(alice()), { snapshot_name: "frozen" });
    expect(r.body.errcode, JSON.stringify(r.body)).toBe(0);
    await until(() => dbc.call(`snapshot/list/${taskId}/frozen`, DbcClient.signed(alice())), (l) => l.body.message?.status === "none", 120_000, "snapshot made", 500);
    const vm = (await call(`${agent.url}/common/vm/list`, { token: agent.adminToken })).body.find((v: any) => v.owner === alice().address);
    const log = await call(`${agent.url}/common/vm/log?vm_id=${vm.id}`, { token: agent.adminToken });
    expect(log.body.lines.some((l: string) => l.includes("snapshot frozen: the guest agent froze the guest's filesystems"))).toBe(true);
    // Thawed: the guest writes again.
    expect(await sshRun(ssh.password, "echo written-after > /home/dbc/marker2 && sync && cat /home/dbc/marker2")).toBe("written-after");
  }, 180_000);
});
