import { connect, type Socket } from "node:net";
import { randomInt } from "node:crypto";

/** Why a guest agent call failed; decide on `code`. */
export const GuestAgentErrorCode = {
  /** Nothing answered in time: the guest has no agent, or it is not up yet. */
  NotResponding: "not_responding",
  /** The agent answered with an error (its class and text are in the message). */
  CommandFailed: "command_failed",
} as const;
export type GuestAgentErrorCode = (typeof GuestAgentErrorCode)[keyof typeof GuestAgentErrorCode];

export class GuestAgentError extends Error {
  constructor(
    readonly code: GuestAgentErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "GuestAgentError";
  }
}

/** The longest line an agent may send: a reply bigger than this is not one batu asked for. */
const MAX_LINE_BYTES = 64 * 1024;

/**
 * One exchange with the QEMU guest agent over the VM's virtio-serial socket (`qga.sock`): a
 * `guest-sync` with a fresh id first, so a reply left in the channel by an earlier caller is never
 * taken for ours, then `command`. QEMU serves one client on the socket at a time; each call connects,
 * asks and disconnects. Rejects with GuestAgentError: `not_responding` when no answer comes within
 * `timeoutMs` (a guest without an agent), `command_failed` with the agent's own words.
 */
export function guestAgentCall<T = unknown>(
  socketPath: string,
  command: string,
  args?: Record<string, unknown>,
  opts: { timeoutMs?: number } = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  return new Promise<T>((resolve, reject) => {
    const syncId = randomInt(1, 2 ** 31);
    let socket: Socket | undefined;
    let buf = "";
    let synced = false;
    const finish = (err: Error | null, value?: T) => {
      clearTimeout(timer);
      socket?.destroy();
      if (err) reject(err);
      else resolve(value as T);
    };
    const timer = setTimeout(
      () => finish(new GuestAgentError(GuestAgentErrorCode.NotResponding, `the guest agent did not answer within ${timeoutMs} ms (no qemu-guest-agent in the guest, or it is not up yet)`)),
      timeoutMs,
    );
    const send = (execute: string, a?: Record<string, unknown>) => socket!.write(`${JSON.stringify(a ? { execute, arguments: a } : { execute })}\n`);
    const onLine = (line: string) => {
      let msg: { return?: unknown; error?: { class?: string; desc?: string } };
      try {
        msg = JSON.parse(line) as typeof msg;
      } catch {
        return; // noise from an earlier exchange or the guest's start: the sync id decides
      }
      if (!synced) {
        if (msg.return === syncId) {
          synced = true;
          send(command, args);
        }
        return;
      }
      if (msg.error) finish(new GuestAgentError(GuestAgentErrorCode.CommandFailed, `${command}: ${msg.error.class ?? "error"}: ${msg.error.desc ?? "failed"}`));
      else finish(null, msg.return as T);
    };
    socket = connect(socketPath);
    socket.setEncoding("utf8");
    socket.on("connect", () => send("guest-sync", { id: syncId }));
    socket.on("data", (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line) onLine(line);
      }
      if (buf.length > MAX_LINE_BYTES) finish(new GuestAgentError(GuestAgentErrorCode.CommandFailed, `${command}: the guest agent sent an over-long line`));
    });
    socket.on("error", (e) => finish(new GuestAgentError(GuestAgentErrorCode.NotResponding, `the guest agent channel cannot be opened: ${e.message}`)));
    socket.on("close", () => finish(new GuestAgentError(GuestAgentErrorCode.NotResponding, "the guest agent channel closed before an answer")));
  });
}
