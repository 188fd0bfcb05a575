import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { call, runCli, TestAgents, type AgentProcess } from "./helpers/agent-process.js";
import { endVmTests, httpStatus, freePort } from "./helpers/vm.js";
import { until } from "./helpers/wait.js";

/*
 * `batu` as people use it, against a real agent and a real guest (the demo image, TCG here): the
 * operator's `batu vm ...` on the host API, and a renter's `batu task ...` on the renter API signed
 * from a wallet file. One agent and one operator VM for the file.
 */
const agents = new TestAgents();
let agent: AgentProcess;
let at: string[];
let vmId: string;
let httpPort: number;

const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli([...args, ...at], env, 120_000);

beforeAll(async () => {
  agent = await agents.start({ extraArgs: ["--shutdown-timeout", "20", "--cpu-overcommit", "4"] });
  at = ["--conf-dir", agent.confDir, "--port", String(agent.port)];
  httpPort = await freePort();
});
afterAll(async () => {
  await endVmTests(agent);
  await agents.cleanup();
});

describe("batu vm: the operator's VMs", () => {
  it("create waits until the guest is ready, and its forward answers", async () => {
    const r = await cli(["vm", "create", "--name", "cli-web", "--memory", "256M", "--forward", `tcp,${httpPort}:80`, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    // --json: the VM as the host API lists it, and no spinner (stderr is no terminal anyway).
    const vm = JSON.parse(r.stdout);
    expect(vm).toMatchObject({ nickname: "cli-web", status: "running", ready: true, main_memory: "256M", custom_port: [`tcp,${httpPort}:80`] });
    vmId = vm.id;
    expect(r.stderr).toBe("");
    expect(await httpStatus(httpPort)).toBe(200);
  });

  it("list: a table for people, JSON and YAML for scripts", async () => {
    const table = await cli(["vm", "list"]);
    expect(table.code, table.stderr).toBe(0);
    const [head, ...rows] = table.stdout.trimEnd().split("\n");
    expect(head).toMatch(/^ID\s+NAME\s+STATUS\s+READY\s+CPUS\s+MEMORY\s+IMAGE\s+SSH\s+OWNER$/);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatch(new RegExp(`^${vmId}\\s+cli-web\\s+running\\s+yes\\s+1\\s+256M\\s+batu-demo\\.qcow2\\s+\\d+\\s+operator$`));

    const json = await cli(["vm", "list", "-o", "json"]);
    expect(JSON.parse(json.stdout)).toEqual((await call(`${agent.url}/common/vm/list`, { token: agent.adminToken })).body);
    const yaml = await cli(["vm", "ls", "-o", "yaml"]);
    expect(parseYaml(yaml.stdout)).toEqual(JSON.parse(json.stdout));
  });

  it("show, stats, console and log", async () => {
    const show = await cli(["vm", "show", vmId]);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(new RegExp(`^id: +${vmId}$`, "m"));
    expect(show.stdout).toMatch(/^memory: +256M$/m);
    expect(show.stdout).toMatch(new RegExp(`^forwards: +tcp,${httpPort}:80$`, "m"));

    const stats = await cli(["vm", "stats", vmId, "--json"]);
    expect(stats.code, stats.stderr).toBe(0);
    expect(JSON.parse(stats.stdout)).toMatchObject({ vm_id: vmId, status: "running", ready: true, memory: { configured_bytes: 256 * 2 ** 20 } });
    expect((await cli(["vm", "stats", vmId])).stdout).toMatch(/^uptime: +\d+/m);

    const consoleInfo = await cli(["vm", "console", vmId, "--json"]);
    expect(consoleInfo.code, consoleInfo.stderr).toBe(0);
    const vnc = JSON.parse(consoleInfo.stdout);
    const listed = JSON.parse((await cli(["vm", "show", vmId, "--json"])).stdout);
    expect(vnc).toMatchObject({ vm_id: vmId, host: "127.0.0.1", port: listed.vnc_port, running: true, password: expect.stringMatching(/^.{8}$/) });

    const log = await cli(["vm", "log", vmId]);
    expect(log.code, log.stderr).toBe(0);
    expect(log.stdout.trimEnd().split("\n").length).toBeGreaterThan(1);
    const first = await cli(["vm", "log", vmId, "--head", "--lines", "1"]);
    expect(first.stdout.trimEnd().split("\n")).toEqual([log.stdout.split("\n")[0]]);
  });

  it("stop, then start: each answers when done, and the guest comes back", async () => {
    const stop = await cli(["vm", "stop", vmId]);
    expect(stop, stop.stderr).toMatchObject({ code: 0, stdout: `shut down ${vmId}\n` });
    expect(JSON.parse((await cli(["vm", "show", vmId, "--json"])).stdout).status).toBe("closed");
    // Stopping what is stopped: the server refuses (exit 1) and says why.
    const again = await cli(["vm", "stop", vmId]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/refused: vm is closed/);

    const start = await cli(["vm", "start", vmId]);
    expect(start, start.stderr).toMatchObject({ code: 0, stdout: `started ${vmId}\n` });
    await until(() => httpStatus(httpPort), (s) => s === 200, 60_000, "guest's HTTP after start", 300);
  });

  it("--remote: the same host over HTTPS, its certificate pinned; a wrong pin reaches nobody (exit 3)", async () => {
    const remote = ["--remote", `https://127.0.0.1:${agent.tlsPort}`, "--token", agent.adminToken];
    const ok = await runCli(["vm", "list", "--json", ...remote, "--tls-pin", agent.certSha256]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).map((v: { id: string }) => v.id)).toEqual([vmId]);
    const wrong = await runCli(["vm", "list", ...remote, "--tls-pin", "0".repeat(64)]);
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toMatch(/not the one pinned/);
    const unpinned = await runCli(["vm", "list", ...remote]);
    expect(unpinned.code).toBe(2);
    expect(unpinned.stderr).toMatch(/--tls-pin/);
  });

  it("delete removes it", async () => {
    const r = await cli(["vm", "delete", vmId]);
    expect(r, r.stderr).toMatchObject({ code: 0, stdout: `deleted ${vmId}\n` });
    expect((await cli(["vm", "list"])).stdout).toBe("no VMs\n");
  });
});

describe("batu task: a renter with a wallet file", () => {
  it("rent grant, then task start (waits), list, show, delete as that renter", async () => {
    const walletFile = join(agents.dir("batu-cli-wallet-"), "renter.secret");
    const made = await runCli(["wallet", "new", "--save", walletFile, "--json"]);
    expect(made.code, made.stderr).toBe(0);
    const { address } = JSON.parse(made.stdout) as { address: string };
    const granted = await cli(["rent", "grant", agent.nodeId, "--wallet", address, "--until", "1h"]);
    expect(granted.code, granted.stderr).toBe(0);

    const as = ["--wallet-file", walletFile];
    // The node: the agent's own by default; `task nodes` shows it rented.
    const nodes = await cli(["task", "nodes", "--json"]);
    expect(JSON.parse(nodes.stdout)[0]).toMatchObject({ node_id: agent.nodeId, state: "rented" });

    const started = await cli(["task", "start", "--cpus", "1", "--mem-gib", "1", "--desc", "from the cli", "--json", ...as]);
    expect(started.code, started.stderr).toBe(0);
    const task = JSON.parse(started.stdout);
    expect(task).toMatchObject({ status: "running", desc: "from the cli", login_password: expect.any(String) });

    const list = await cli(["task", "list", ...as]);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/^TASK ID\s+STATUS\s+CREATED\s+DESC$/m);
    expect(list.stdout).toMatch(new RegExp(`^${task.task_id}\\s+running\\s+.+\\s+from the cli$`, "m"));

    // Another wallet is not the renter: refused by the node (exit 1), DBC's words.
    const stranger = await cli(["task", "list"], { BATU_WALLET_SECRET: "//batu-cli-stranger" });
    expect(stranger.code).toBe(1);
    expect(stranger.stderr).toMatch(/errcode -3.*wallet not rented/);

    // A session handed to a second user: no wallet needed then.
    const session = await cli(["task", "session", "--json", ...as]);
    expect(session.code, session.stderr).toBe(0);
    const { session_id, session_id_sign } = JSON.parse(session.stdout);
    const shown = await cli(["task", "show", task.task_id, "--json"], { BATU_SESSION_ID: session_id, BATU_SESSION_SIGN: session_id_sign });
    expect(shown.code, shown.stderr).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({ task_id: task.task_id, status: "running" });

    // The task's log, its ports changed, a power-off and a start of the same task.
    const logs = await cli(["task", "logs", task.task_id, "--lines", "5", "--json", ...as]);
    expect(logs.code, logs.stderr).toBe(0);
    expect(JSON.parse(logs.stdout).length).toBeGreaterThan(0);
    const sshPort = await freePort();
    const modified = await cli(["task", "modify", task.task_id, "--ssh-port", String(sshPort), ...as]);
    expect(modified, modified.stderr).toMatchObject({ code: 0, stdout: `modified ${task.task_id}: ok\n` });
    expect(JSON.parse((await cli(["task", "show", task.task_id, "--json", ...as])).stdout).ssh_port).toBe(String(sshPort));
    const off = await cli(["task", "stop", task.task_id, "--force", ...as]);
    expect(off, off.stderr).toMatchObject({ code: 0, stdout: `powered off ${task.task_id}\n` });
    expect(JSON.parse((await cli(["task", "show", task.task_id, "--json", ...as])).stdout).status).toBe("closed");
    const on = await cli(["task", "start", task.task_id, ...as]);
    expect(on, on.stderr).toMatchObject({ code: 0, stdout: `started ${task.task_id}\n` });
    expect(JSON.parse((await cli(["task", "show", task.task_id, "--json", ...as])).stdout).status).toBe("running");

    const deleted = await cli(["task", "delete", task.task_id, ...as]);
    expect(deleted, deleted.stderr).toMatchObject({ code: 0, stdout: `deleted ${task.task_id}\n` });
    expect((await cli(["task", "list", ...as])).stdout).toBe("no tasks\n");
  });
});

describe("batu: exit codes", () => {
  it("usage errors exit 2, an absent agent 3, a refusal 1", async () => {
    const unknown = await runCli(["vm", "lsit"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^batu: unknown command 'lsit'/);
    const badFlag = await cli(["vm", "create", "--memory", "lots"]);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toMatch(/--memory: a size like 512M/);
    const missing = await cli(["vm", "show"]);
    expect(missing.code).toBe(2);
    const absent = await runCli(["vm", "list", "--conf-dir", agent.confDir, "--port", "1"]);
    expect(absent.code).toBe(3);
    expect(absent.stderr).toMatch(/no agent answers/);
    const refused = await cli(["vm", "start", "no-such-vm"]);
    expect(refused.code).toBe(1);
  });

  it("completion bash names the commands and their flags", async () => {
    const r = await runCli(["completion", "bash"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("complete -o default -F _batu batu");
    expect(r.stdout).toMatch(/' vm'\) words='[^']*\bcreate\b/);
  });
});
