import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { checkInterrupted, cmdline, now, sleep, stopPid, waitForMarker } from "./proc.js";

const CLI = resolve(import.meta.dirname, "../../dist/cli/main.js");
export const READY_MARKER = "BATU-READY";

/** One batu VM's figures; times are now() epoch milliseconds. */
export interface BatuSample {
  id: string;
  /** POST /common/vm/add sent. */
  t0: number;
  /** Its reply (QEMU runs) received. */
  running: number;
  /** status in the list read right after the reply. */
  statusAfterReply: string;
  /** BATU-READY seen in the VM's serial log (10 ms polls). */
  readySerial: number;
  readySerialUpperBound: boolean;
  /** `ready: true` seen in /common/vm/list (50 ms polls). */
  readyApi: number;
  /** Where the agent spent create→running, from its own log lines (ms). */
  breakdown: { preSpawnMs: number; qemuDaemonizeMs: number; attachMs: number; replyMs: number } | null;
}

/** A booted VM of any of the three systems: its figures, and how to get rid of it (resolves with ms taken). */
export interface Booted<S> {
  sample: S;
  destroy: () => Promise<number>;
}

/** A batu agent this bench started: loopback, temporary conf/data dirs. */
export class BatuAgent {
  private logText = "";
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    readonly token: string,
    readonly dataDir: string,
  ) {
    child.stderr!.on("data", (b: Buffer) => (this.logText += b.toString()));
  }

  static async start(root: string): Promise<BatuAgent> {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
    const confDir = join(root, "conf");
    const dataDir = join(root, "data");
    const child = spawn(
      process.execPath,
      [CLI, "agent", "--host", "127.0.0.1", "--port", "0", "--tls-port", "0", "--network", "user", "--conf-dir", confDir, "--data-dir", dataDir,
        "--forward-host", "127.0.0.1", "--cpu-overcommit", "8", "--log-level", "info"],
      // Own process group: a Ctrl-C in the terminal reaches the bench only, which then cleans up in order.
      { stdio: ["ignore", "ignore", "pipe"], detached: true },
    );
    let stderr = "";
    const url = await new Promise<string>((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`agent did not start in 30 s:\n${stderr}`)), 30_000);
      child.once("exit", (code) => {
        clearTimeout(timer);
        fail(new Error(`agent exited with ${code}:\n${stderr}`));
      });
      const onData = (b: Buffer) => {
        stderr += b.toString();
        const line = stderr.split("\n").find((l) => l.includes('"agent listening"'));
        if (!line) return;
        clearTimeout(timer);
        child.stderr!.off("data", onData);
        ok((JSON.parse(line) as { url: string }).url);
      };
      child.stderr!.on("data", onData);
    });
    const agent = new BatuAgent(child, url, readFileSync(join(confDir, "admin.token"), "utf8").trim(), dataDir);
    agent.logText = stderr;
    return agent;
  }

  get pid(): number {
    return this.child.pid!;
  }

  private async call(path: string, body?: unknown): Promise<any> {
    const res = await fetch(`${this.url}${path}`, {
      method: body === undefined ? "GET" : "POST",
      headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`${path}: HTTP ${res.status}: ${text.slice(0, 400)}`);
    return JSON.parse(text);
  }

  list(): Promise<Array<{ id: string; status: string; ready: boolean }>> {
    return this.call("/common/vm/list");
  }

  /** How often the list is polled for `ready: true`. */
  apiPollMs = 50;

  private readonly waiters = new Map<string, { deadline: number; ok: (t: number) => void; fail: (e: Error) => void }>();

  /**
   * Resolves when the list shows the VM `ready: true` (the time its reply arrived). One poller for
   * all waiting VMs, one list call every `apiPollMs` (50 ms), so that 5 VMs at once cost the agent no more than one.
   */
  private waitReady(id: string, timeoutMs: number): Promise<number> {
    const p = new Promise<number>((ok, fail) => this.waiters.set(id, { deadline: Date.now() + timeoutMs, ok, fail }));
    if (this.waiters.size === 1) void this.pollList();
    return p;
  }

  private async pollList(): Promise<void> {
    while (this.waiters.size) {
      let vms: Awaited<ReturnType<BatuAgent["list"]>>;
      try {
        checkInterrupted();
        vms = await this.list();
      } catch (e) {
        for (const w of this.waiters.values()) w.fail(e as Error);
        this.waiters.clear();
        return;
      }
      const t = now();
      for (const [id, w] of this.waiters) {
        const vm = vms.find((v) => v.id === id);
        let err: string | null = null;
        if (vm?.ready) w.ok(t);
        else if (!vm || vm.status !== "running") err = `vm ${id}: status ${vm?.status ?? "gone"} while waiting for ready`;
        else if (Date.now() > w.deadline) err = `vm ${id} not ready in time`;
        else continue;
        if (err) w.fail(new Error(err));
        this.waiters.delete(id);
      }
      await sleep(this.apiPollMs);
    }
  }

  /**
   * Creates one VM (1 vCPU, 256M, the demo image) and waits until it is ready; the VM keeps running
   * until `destroy` (which resolves with the delete call's duration).
   */
  async boot(opts: { timeoutMs: number }): Promise<Booted<BatuSample>> {
    checkInterrupted();
    const t0 = now();
    const reply = (await this.call("/common/vm/add", { cpu_physical_core: 1, main_memory: "256M", nickname: "bench" })) as { id: string };
    const running = now();
    const id = reply.id;
    const destroy = async () => {
      const d0 = now();
      await this.delete(id);
      return now() - d0;
    };
    try {
      const serialLog = join(this.dataDir, "vms", id, "serial.log");
      const serial = waitForMarker(serialLog, READY_MARKER, { timeoutMs: opts.timeoutMs });
      const first = (await this.list()).find((v) => v.id === id);
      const api = first?.ready ? Promise.resolve(now()) : this.waitReady(id, opts.timeoutMs);
      const [s, readyApi] = await Promise.all([serial, api]);
      const sample: BatuSample = {
        id, t0, running, statusAfterReply: first?.status ?? "missing", readySerial: s.at, readySerialUpperBound: s.firstLook,
        readyApi, breakdown: this.breakdown(id, t0, running),
      };
      return { sample, destroy };
    } catch (e) {
      await destroy().catch(() => undefined);
      throw e;
    }
  }

  delete(id: string): Promise<unknown> {
    return this.call("/common/vm/control", { vm_id: id, action: "delete" });
  }

  /** The QEMU pid of a running VM (its qemu.pid). */
  qemuPid(id: string): number | null {
    const f = join(this.dataDir, "vms", id, "qemu.pid");
    return existsSync(f) ? Number(readFileSync(f, "utf8").trim()) : null;
  }

  /** create→running split by the agent's log lines "QEMU started" (with its `ms`) and "vm created". */
  private breakdown(id: string, t0: number, running: number): BatuSample["breakdown"] {
    let started: { time: number; ms: number } | undefined;
    let created: { time: number } | undefined;
    for (const line of this.logText.split("\n")) {
      if (!line.includes(id)) continue;
      try {
        const j = JSON.parse(line) as { msg?: string; vm?: string; time: number; ms?: number };
        if (j.vm !== id) continue;
        if (j.msg === "QEMU started" && typeof j.ms === "number") started = { time: j.time, ms: j.ms };
        if (j.msg === "vm created") created = { time: j.time };
      } catch {
        // not a JSON line
      }
    }
    if (!started || !created) return null;
    return {
      preSpawnMs: started.time - started.ms - t0,
      qemuDaemonizeMs: started.ms,
      attachMs: created.time - started.time,
      replyMs: running - created.time,
    };
  }

  /** Deletes every VM through the API, stops the agent, then kills any QEMU left in its data dir. */
  async shutdown(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      try {
        for (const vm of await this.list()) await this.delete(vm.id).catch(() => undefined);
      } catch {
        // agent unreachable: the pid sweep below still runs
      }
      const exited = new Promise((r) => this.child.once("exit", r));
      this.child.kill("SIGTERM");
      await Promise.race([exited, sleep(10_000)]);
      if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
    }
    const vmsDir = join(this.dataDir, "vms");
    if (!existsSync(vmsDir)) return;
    for (const id of readdirSync(vmsDir)) {
      const pid = this.qemuPid(id);
      if (pid !== null && (await cmdline(pid))?.join(" ").includes(vmsDir)) await stopPid(pid, vmsDir);
    }
  }
}
