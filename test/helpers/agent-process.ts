import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { readFileSync } from "node:fs";
import { requestOverSocket } from "./unix-http.js";

export const CLI = resolve(import.meta.dirname, "../../dist/cli/main.js");

/** How an agent process is started; `TestAgents.restart` starts it again the same way. */
export interface AgentStartOptions {
  /** Where conf/ and data/ live (a fresh temporary dir when neither this nor confDir/dataDir is given). */
  dir?: string;
  confDir?: string;
  dataDir?: string;
  port?: number;
  /** Its HTTPS port; default: 0 (any), or the agent's own default (10443) inside a namespace of its own (`wrap`). */
  tlsPort?: number;
  /** The address it binds (default 127.0.0.1). */
  host?: string;
  extraArgs?: string[];
  timeoutMs?: number;
  /** A command the agent runs under, e.g. a network or mount namespace: [program, ...args]; node's argv follows. */
  wrap?: string[];
  /** Extra environment variables (e.g. BATU_JOIN_TOKEN). */
  env?: Record<string, string>;
}

export interface AgentProcess {
  /** The options it was started with, its dirs filled in. */
  options: AgentStartOptions & { confDir: string; dataDir: string };
  child: ChildProcess;
  url: string;
  port: number;
  /** `https://host:tlsPort`: every route over TLS (the agent's self-signed certificate). */
  tlsUrl: string;
  tlsPort: number;
  /** SHA-256 of its TLS certificate. */
  certSha256: string;
  /** `sha256//...`: its public key pin, as `curl --pinnedpubkey` takes it. */
  curlPin: string;
  nodeId: string;
  confDir: string;
  dataDir: string;
  adminToken: string;
  joinToken: string;
  /** Everything the agent wrote to stderr so far. */
  logs(): string;
  /** SIGTERM, wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL, wait for exit. */
  kill(): Promise<void>;
  /** Marks an exit as expected (a test that crashes the agent on purpose); resolves with how it ended. */
  expectExit(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function tempDir(prefix = "batu-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Runs the batu CLI to completion; resolves with code, stdout and stderr. */
export function runCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 30_000,
  wrap: string[] = [],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    const [program, ...prefix] = [...wrap, process.execPath];
    const child = spawn(program!, [...prefix, CLI, ...args], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
      timeout: timeoutMs,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    child.on("close", (code) => resolvePromise({ code, stdout, stderr }));
  });
}

/**
 * Starts the real agent process (dist/cli/main.js) on a free loopback port (port 0, read back from
 * its log line) with the given (or fresh temporary) conf and data dirs. Prefer `TestAgents`, which
 * also ends and removes what a test file started.
 */
export async function startAgentProcess(opts: AgentStartOptions = {}): Promise<AgentProcess> {
  const base = opts.confDir && opts.dataDir ? undefined : (opts.dir ?? tempDir());
  const confDir = opts.confDir ?? join(base!, "conf");
  const dataDir = opts.dataDir ?? join(base!, "data");
  const [program, ...prefix] = [...(opts.wrap ?? []), process.execPath];
  // Agents of this machine's test files share its loopback: a free HTTPS port each, unless told.
  const tlsPort = opts.tlsPort ?? (opts.wrap ? undefined : 0);
  const child = spawn(
    program!,
    [
      ...prefix, CLI, "agent", "--host", opts.host ?? "127.0.0.1", "--port", String(opts.port ?? 0),
      ...(tlsPort !== undefined ? ["--tls-port", String(tlsPort)] : []),
      "--conf-dir", confDir, "--data-dir", dataDir,
      // Test agents use QEMU's user-mode networking unless a test asks for the bridge (only ever
      // inside a network namespace of its own): a bridge, nftables and dnsmasq in the machine's own
      // namespace would touch more than loopback.
      ...(opts.extraArgs?.includes("--network") ? [] : ["--network", "user"]),
      ...(opts.extraArgs ?? []),
    ],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...opts.env } },
  );
  let stderr = "";
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once("exit", (code, signal) => r({ code, signal })));
  const exited = ended.then(({ code }) => code);
  type Listening = { url: string; tlsUrl: string; certSha256: string; curlPin: string; nodeId: string };
  const ready = new Promise<Listening>((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`agent did not start in time:\n${stderr}`)), opts.timeoutMs ?? 30_000);
    child.stderr!.on("data", (b: Buffer) => {
      stderr += b.toString();
      for (const line of stderr.split("\n")) {
        if (!line.includes('"agent listening"')) continue;
        try {
          const j = JSON.parse(line) as Listening;
          clearTimeout(timer);
          resolveReady(j);
          return;
        } catch {
          // a partial line: wait for more
        }
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`agent exited with ${code} before listening:\n${stderr}`));
    });
  });
  child.stdout!.resume();
  let stopping = false;
  // An agent that dies on its own is a bug worth seeing: print the end of its log.
  void exited.then((code) => {
    if (!stopping) console.error(`agent exited unexpectedly (code ${code}); last log lines:\n${stderr.split("\n").slice(-15).join("\n")}`);
  });
  const { url, tlsUrl, certSha256, curlPin, nodeId } = await ready;
  return {
    options: { ...opts, confDir, dataDir },
    child,
    url,
    port: Number(new URL(url).port),
    tlsUrl,
    tlsPort: Number(new URL(tlsUrl).port),
    certSha256,
    curlPin,
    nodeId,
    confDir,
    dataDir,
    adminToken: readFileSync(join(confDir, "admin.token"), "utf8").trim(),
    joinToken: readFileSync(join(confDir, "join.token"), "utf8").trim(),
    logs: () => stderr,
    stop: async () => {
      stopping = true;
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return exited;
    },
    kill: async () => {
      stopping = true;
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
    expectExit: () => {
      stopping = true;
      return ended;
    },
  };
}

/**
 * The agents one test file starts and the temporary dirs they live in. `cleanup()` (in afterAll)
 * kills every agent still running and removes every dir, so nothing outlives the file.
 */
export class TestAgents {
  private readonly live = new Set<AgentProcess>();
  private readonly dirs: string[] = [];

  /** A fresh temporary dir, removed by `cleanup()`. */
  dir(prefix = "batu-test-"): string {
    const d = tempDir(prefix);
    this.dirs.push(d);
    return d;
  }

  /** Starts an agent; its conf/ and data/ go under `dir` (a fresh one when no dir is given). */
  async start(opts: AgentStartOptions = {}): Promise<AgentProcess> {
    const agent = await startAgentProcess(opts.dir || (opts.confDir && opts.dataDir) ? opts : { ...opts, dir: this.dir() });
    this.live.add(agent);
    return agent;
  }

  /** Ends `agent` (SIGTERM, or SIGKILL with "kill"); its dirs stay. */
  async stop(agent: AgentProcess, how: "stop" | "kill" = "stop"): Promise<void> {
    await agent[how]();
    this.live.delete(agent);
  }

  /** Starts an agent that ended again, over the same dirs and options (`change` overrides some). */
  restart(agent: AgentProcess, change: Partial<AgentStartOptions> = {}): Promise<AgentProcess> {
    return this.start({ ...agent.options, ...change });
  }

  /** Every agent started here and not stopped since. */
  running(): AgentProcess[] {
    return [...this.live];
  }

  /** Kills every agent still running, then removes the dirs. */
  async cleanup(): Promise<void> {
    await Promise.all([...this.live].map((a) => a.kill()));
    this.live.clear();
    this.dirs.splice(0).forEach(removeDir);
  }
}

/** Removes a temporary dir made by tempDir(). */
export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * fetch with the bearer token; returns status and parsed JSON. With `socketPath`, the request goes
 * over that unix socket instead (the URL's host then only names the Host header).
 */
export async function call(
  url: string,
  opts: { token?: string; method?: string; body?: unknown; rawBody?: string; contentType?: string; socketPath?: string } = {},
): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = {};
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined;
  if (opts.rawBody !== undefined) body = opts.rawBody;
  else if (opts.body !== undefined) body = JSON.stringify(opts.body);
  if (body !== undefined) headers["content-type"] = opts.contentType ?? "application/json";
  const method = opts.method ?? (body === undefined ? "GET" : "POST");
  let status: number;
  let text: string;
  if (opts.socketPath) {
    ({ status, text } = await requestOverSocket(opts.socketPath, url, { method, headers, body }));
  } else {
    const res = await fetch(url, { method, headers, body });
    status = res.status;
    text = await res.text();
  }
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // leave text
  }
  return { status, body: parsed };
}

/**
 * A command prefix that runs what follows with `dir` mounted read-only, in a private mount
 * namespace (root ignores file modes, so a real read-only mount is the honest test).
 */
export function readOnlyMount(dir: string): string[] {
  return ["unshare", "-m", "sh", "-c", 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"', dir];
}
