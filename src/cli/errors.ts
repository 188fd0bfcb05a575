/**
 * The CLI's exit codes, one meaning each, so scripts can tell a refusal from a typo from an absent
 * agent. docs/cli.md lists them; keep the two in step.
 */
export const EXIT = {
  /** Done. */
  ok: 0,
  /** The server refused or the operation failed (a VM that did not come up, a transfer that failed). */
  failed: 1,
  /** The command line is wrong: an unknown command or flag, a missing or malformed value. */
  usage: 2,
  /** No agent answered (not running, wrong port or address, TLS pin mismatch). */
  unreachable: 3,
  /** The agent's configuration is invalid (`batu agent` only; sysexits' EX_CONFIG). */
  config: 78,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An expected failure the user can fix (bad flag, unreachable agent): printed without a stack. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.usage,
  ) {
    super(message);
    this.name = "UsageError";
  }
}

/** The server said no, or the operation failed: exit 1. */
export const failed = (message: string): UsageError => new UsageError(message, EXIT.failed);

/** No agent answered: exit 3. */
export const unreachable = (message: string): UsageError => new UsageError(message, EXIT.unreachable);
