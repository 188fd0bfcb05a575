import { spawn } from "node:child_process";

/** A child process that failed: carries everything needed to understand why. */
export class ExecError extends Error {
  constructor(
    readonly command: string,
    readonly args: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    readonly signal: NodeJS.Signals | null = null,
  ) {
    super(
      `${command} exited with ${signal ? `signal ${signal}` : `code ${String(exitCode)}`}: ${stderr.trim().slice(0, 500)}`,
    );
    this.name = "ExecError";
  }
}

export interface ExecOptions {
  /** Kill the child after this long; default 60 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to the child's stdin, then closed. */
  input?: string;
  /** Called with each piece of stdout as it comes (a progress line); the whole is still returned. */
  onStdout?: (chunk: string) => void;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
}

/**
 * Runs a program with an argument array (never a shell string) and resolves with its output.
 * Rejects with an ExecError on a non-zero exit, a signal or a timeout.
 */
export function exec(command: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: opts.cwd,
      env: opts.env,
      stdio: ["pipe", "pipe", "pipe"],
      timeout: opts.timeoutMs ?? 60_000,
      signal: opts.signal,
      killSignal: "SIGKILL",
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => {
      out.push(b);
      opts.onStdout?.(b.toString("utf8"));
    });
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e) => reject(new ExecError(command, args, null, e.message)));
    child.on("close", (code, sig) => {
      const stdout = Buffer.concat(out).toString("utf8");
      const stderr = Buffer.concat(err).toString("utf8");
      if (code === 0) resolve({ stdout, stderr });
      else reject(new ExecError(command, args, code, stderr, sig));
    });
    // A child that exits before reading its stdin makes the write fail with EPIPE; that is the
    // child's business (its exit code says what happened), never a reason to crash the agent.
    child.stdin.on("error", () => undefined);
    child.stdin.end(opts.input ?? "");
  });
}
