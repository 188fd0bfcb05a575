import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import Database from "better-sqlite3";
import { READY_MARKER } from "./batu.js";
import type { Netns } from "./netns.js";
import { runInput } from "./netns.js";
import { checkInterrupted, cmdline, sleep, stopChild, stopPid, waitForMarker } from "./proc.js";

const CLI = resolve(import.meta.dirname, "../../dist/cli/main.js");

/** A VM of an agent of this bench: its id, QEMU pid, ports and login. */
export interface AgentVm {
  id: string;
  qemuPid: number;
  sshPort: number;
  password: string;
  /** BATU-READY in its serial log, ms after the create call was sent. */
  readyMs: number;
}

/**
 * A batu agent started by this bench inside a network namespace of its own (`--network bridge` or
 * `user`), its log in a file. Its API listens on the namespace's loopback: the bench calls it with
 * curl run inside the namespace (the root namespace has no link into it).
 */
export class NsAgent {
  private constructor(
    private readonly child: ChildProcess,
    readonly ns: Netns,
    readonly network: "bridge" | "user",
    readonly url: string,
    readonly dir: string,
    readonly logPath: string,
  ) {}

  get dataDir(): string {
    return join(this.dir, "data");
  }

  private get headerFile(): string {
    return join(this.dir, "auth.header");
  }

  static async start(ns: Netns, network: "bridge" | "user", dir: string, forwardHost: string): Promise<NsAgent> {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
    mkdirSync(join(dir, "conf"), { recursive: true });
    const logPath = join(dir, "agent.log");
    const fd = openSync(logPath, "a");
    const child = spawn(
      "ip",
      [...ns.wrap.slice(1), process.execPath, CLI, "agent", "--host", "127.0.0.1", "--port", "0", "--tls-port", "0", "--network", network,
        "--forward-host", forwardHost, "--conf-dir", join(dir, "conf"), "--data-dir", join(dir, "data"), "--cpu-overcommit", "8",
        "--shutdown-timeout", "5", "--log-level", "info"],
      // Own process group: a Ctrl-C reaches the bench only, which then stops the agent itself.
      { stdio: ["ignore", "ignore", fd], detached: true },
    );
    closeSync(fd);
    const deadline = Date.now() + 60_000;
    try {
      for (;;) {
        checkInterrupted();
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`agent (${network}) exited:\n${tail(logPath)}`);
        const line = logLines(logPath).find((l) => l.msg === "agent listening");
        if (line) {
          const agent = new NsAgent(child, ns, network, String(line.url), dir, logPath);
          const token = readFileSync(join(dir, "conf", "admin.token"), "utf8").trim();
          // The token reaches curl in a 0600 file, not its argv.
          writeFileSync(agent.headerFile, `authorization: Bearer ${token}\n`, { mode: 0o600 });
          return agent;
        }
        if (Date.now() > deadline) throw new Error(`agent (${network}) did not listen within 60 s:\n${tail(logPath)}`);
        await sleep(20);
      }
    } catch (e) {
      await stopChild(child, 5_000);
      throw e;
    }
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** A host API call, made by curl inside the agent's namespace. */
  async call(path: string, body?: unknown): Promise<any> {
    const argv = [...this.ns.wrap, "curl", "-sS", "-m", "120", "-H", `@${this.headerFile}`, "-w", "\n%{http_code}"];
    if (body !== undefined) argv.push("-H", "content-type: application/json", "--data-binary", "@-");
    argv.push(`${this.url}${path}`);
    const r = await runInput(argv, { input: body === undefined ? "" : JSON.stringify(body), timeoutMs: 130_000 });
    const nl = r.stdout.lastIndexOf("\n");
    const status = Number(r.stdout.slice(nl + 1));
    const text = r.stdout.slice(0, nl);
    if (r.code !== 0 || status !== 200) throw new Error(`${path}: curl exit ${r.code}, HTTP ${status}: ${text.slice(0, 400)}${r.stderr.slice(0, 400)}`);
    return JSON.parse(text);
  }

  /**
   * Creates the bench's VM (1 vCPU, 256 MiB, the demo image, host name "bench") with `forwards`
   * (DBC's custom_port syntax) and waits for BATU-READY in its serial log.
   */
  async createVm(forwards: string[], timeoutMs: number): Promise<AgentVm> {
    const t0 = performance.now();
    const reply = (await this.call("/common/vm/add", { cpu_physical_core: 1, main_memory: "256M", nickname: "bench", custom_port: forwards })) as { id: string };
    const id = reply.id;
    await waitForMarker(join(this.dataDir, "vms", id, "serial.log"), READY_MARKER, { timeoutMs });
    const readyMs = performance.now() - t0;
    const vm = ((await this.call("/common/vm/list")) as Array<{ id: string; ssh_port: number | null }>).find((v) => v.id === id);
    if (!vm?.ssh_port) throw new Error(`vm ${id}: no ssh_port in the list`);
    const qemuPid = Number(readFileSync(join(this.dataDir, "vms", id, "qemu.pid"), "utf8").trim());
    return { id, qemuPid, sshPort: vm.ssh_port, password: this.loginPassword(id), readyMs };
  }

  /**
   * The VM's login password, read from the agent's database (read-only; the host API does not show
   * it, the renter API's task view does): what its operator or renter would log in with.
   */
  private loginPassword(id: string): string {
    const db = new Database(join(this.dataDir, "batu.db"), { readonly: true, fileMustExist: true });
    try {
      const row = db.prepare("SELECT spec_json FROM vms WHERE id = ?").get(id) as { spec_json: string } | undefined;
      const pw = row ? (JSON.parse(row.spec_json) as { loginPassword?: string }).loginPassword : undefined;
      if (!pw) throw new Error(`vm ${id}: no login password in the agent's database`);
      return pw;
    } finally {
      db.close();
    }
  }

  /** Deletes every VM through the API, stops the agent (SIGTERM, then SIGKILL), then any QEMU left in its data dir (by pid). */
  async shutdown(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      try {
        for (const vm of (await this.call("/common/vm/list")) as Array<{ id: string }>) {
          await this.call("/common/vm/control", { vm_id: vm.id, action: "delete" }).catch(() => undefined);
        }
      } catch {
        // agent unreachable: the pid sweep below still runs
      }
      await stopChild(this.child, 10_000);
    }
    const vmsDir = join(this.dataDir, "vms");
    if (!existsSync(vmsDir)) return;
    for (const id of readdirSync(vmsDir)) {
      const f = join(vmsDir, id, "qemu.pid");
      if (!existsSync(f)) continue;
      const pid = Number(readFileSync(f, "utf8").trim());
      if (pid > 0 && (await cmdline(pid))?.join(" ").includes(vmsDir)) await stopPid(pid, vmsDir);
    }
  }
}

type LogLine = Record<string, unknown> & { msg?: string };

function logLines(path: string): LogLine[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8").split("\n").flatMap((l) => {
    try {
      return l.startsWith("{") ? [JSON.parse(l) as LogLine] : [];
    } catch {
      return [];
    }
  });
}

function tail(path: string): string {
  return existsSync(path) ? readFileSync(path, "utf8").split("\n").slice(-15).join("\n") : "(no log)";
}
