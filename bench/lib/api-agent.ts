import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { checkInterrupted, sleep, stopChild } from "./proc.js";

const CLI = resolve(import.meta.dirname, "../../dist/cli/main.js");
let clkTck: number | null = null;

/** CPU seconds of a process (`self` or a pid): its own, and that of its children it has waited for. */
export interface ProcCpu {
  self: number;
  children: number;
}

export function procCpu(pid: number | "self"): ProcCpu {
  clkTck ??= Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
  // After "pid (comm) ": state is f[0], so utime, stime, cutime, cstime (fields 14..17) are f[11..14].
  return { self: (f[11]! + f[12]!) / clkTck, children: (f[13]! + f[14]!) / clkTck };
}

export const cpuDelta = (a: ProcCpu, b: ProcCpu): ProcCpu => ({ self: b.self - a.self, children: b.children - a.children });

/** One pino line of the agent's log (JSON). */
type LogLine = Record<string, unknown> & { msg?: string; time?: number };

/**
 * A batu agent process this bench started: loopback, port 0, its log (stderr) into a file rather
 * than a pipe to the bench, so that reading it takes no CPU from the measured runs.
 */
export class ApiAgent {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    readonly nodeId: string,
    readonly token: string,
    readonly logPath: string,
    /** spawn → "agent listening", ms. */
    readonly startMs: number,
    /** `https://host:tlsPort`. */
    readonly tlsUrl: string = "",
  ) {}

  /**
   * `nodeArgs`: options for the agent's node (e.g. --cpu-prof, for a diagnostic run); `cli`: another
   * build's dist/cli/main.js (an earlier commit's, for before/after figures).
   */
  static async start(confDir: string, dataDir: string, logPath: string, nodeArgs: string[] = [], cli: string = CLI, agentArgs: string[] = []): Promise<ApiAgent> {
    if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
    const offset = existsSync(logPath) ? statSync(logPath).size : 0;
    const fd = openSync(logPath, "a");
    const t0 = performance.now();
    const child = spawn(
      process.execPath,
      [...nodeArgs, cli, "agent", "--host", "127.0.0.1", "--port", "0", "--tls-port", "0", "--network", "user", "--conf-dir", confDir, "--data-dir", dataDir, "--forward-host", "127.0.0.1", ...agentArgs],
      // Own process group: a Ctrl-C reaches the bench only, which then stops the agent itself.
      { stdio: ["ignore", "ignore", fd], detached: true },
    );
    closeSync(fd);
    const agent = new ApiAgent(child, "", "", "", logPath, 0);
    try {
      const deadline = Date.now() + 60_000;
      for (;;) {
        checkInterrupted();
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`agent exited (${child.exitCode ?? child.signalCode}):\n${tail(logPath)}`);
        const line = ApiAgent.lines(logPath, offset).find((l) => l.msg === "agent listening");
        if (line) {
          const token = readFileSync(join(confDir, "admin.token"), "utf8").trim();
          return new ApiAgent(child, String(line.url), String(line.nodeId), token, logPath, performance.now() - t0, String(line.tlsUrl));
        }
        if (Date.now() > deadline) throw new Error(`agent did not listen within 60 s:\n${tail(logPath)}`);
        await sleep(10);
      }
    } catch (e) {
      await agent.stop();
      throw e;
    }
  }

  /** The JSON lines of the log from byte `offset` on. */
  static lines(logPath: string, offset = 0): LogLine[] {
    const text = readFileSync(logPath).subarray(offset).toString("utf8");
    return text.split("\n").flatMap((l) => {
      try {
        return l.startsWith("{") ? [JSON.parse(l) as LogLine] : [];
      } catch {
        return [];
      }
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  logBytes(): number {
    return statSync(this.logPath).size;
  }

  /** POSTs JSON (admin token for host paths); resolves with the status, headers and raw bytes. */
  async post(path: string, body: unknown): Promise<{ status: number; type: string; bytes: Buffer; json: any }> {
    const res = await fetch(`${this.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(path.startsWith("/api/") ? {} : { authorization: `Bearer ${this.token}` }) },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
    const bytes = Buffer.from(await res.arrayBuffer());
    return { status: res.status, type: res.headers.get("content-type") ?? "", bytes, json: JSON.parse(bytes.toString("utf8")) };
  }

  /** SIGTERM, then SIGKILL after 10 s. Only this child, by its pid. */
  async stop(): Promise<void> {
    await stopChild(this.child, 10_000);
  }
}

function tail(logPath: string): string {
  return existsSync(logPath) ? readFileSync(logPath, "utf8").split("\n").slice(-15).join("\n") : "(no log)";
}
