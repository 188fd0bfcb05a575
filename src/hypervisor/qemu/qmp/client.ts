import { EventEmitter } from "node:events";
import { createConnection, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "../../../lib/logger.js";
import { QmpError, QmpErrorCode, type QmpEvent } from "./errors.js";

/** Reply timeout when the table has no entry for a command. */
export const DEFAULT_QMP_TIMEOUT_MS = 5_000;

/** Per-command reply timeouts (QMP handles one command at a time, so a slow one delays the rest). */
export const DEFAULT_QMP_TIMEOUTS_MS: Readonly<Record<string, number>> = {
  // Answered only after machine init (100-280 ms here; more with large or preallocated RAM).
  qmp_capabilities: 30_000,
  // savevm / loadvm copy all guest RAM to or from the qcow2.
  "human-monitor-command": 300_000,
  "blockdev-add": 30_000,
  "blockdev-del": 30_000,
  device_add: 30_000,
  screendump: 30_000,
  "query-qmp-schema": 15_000,
};

/** Commands whose arguments carry secrets: never logged. */
const SECRET_COMMANDS = new Set(["set_password", "object-add", "change-vnc-password", "human-monitor-command"]);
/** A reply line longer than this without a newline means a broken peer. */
const MAX_LINE_CHARS = 64 * 1024 * 1024;
const CONNECT_RETRY_MS = 50;

export interface QmpConnectOptions {
  /** Keep retrying until the socket accepts and greets within this long; default 10 s. */
  deadlineMs?: number;
  /** Per-command timeouts merged over DEFAULT_QMP_TIMEOUTS_MS. */
  timeoutsMs?: Record<string, number>;
  /** QMP traffic is logged at debug level, secrets left out. */
  logger?: Logger;
  signal?: AbortSignal;
}

export interface QmpExecuteOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** QEMU's greeting: `{"QMP": {"version": ..., "capabilities": [...]}}`. */
export interface QmpGreeting {
  version: { qemu: { major: number; minor: number; micro: number }; package: string };
  capabilities: string[];
}

type QmpListener = ((event: QmpEvent) => void) | (() => void);

interface Pending {
  command: string;
  resolve: (value: unknown) => void;
  reject: (error: QmpError) => void;
  cleanup: () => void;
}

/**
 * A QMP connection: greeting and capabilities handshake, replies matched to requests by id,
 * per-command timeouts, events delivered apart, and every pending call rejected when the socket closes.
 */
export class QmpClient {
  private readonly emitter = new EventEmitter();
  private readonly pending = new Map<number, Pending>();
  private readonly timeouts: Record<string, number>;
  private buffer = "";
  private nextId = 1;
  private isClosed = false;
  private greetingWaiter: ((g: QmpGreeting) => void) | undefined;
  private greetingValue: QmpGreeting | undefined;
  private readonly closedPromise: Promise<void>;

  private constructor(
    private readonly socket: Socket,
    readonly socketPath: string,
    opts: QmpConnectOptions,
    private readonly log: Logger | undefined = opts.logger?.child({ qmp: socketPath }),
  ) {
    this.timeouts = { ...DEFAULT_QMP_TIMEOUTS_MS, ...opts.timeoutsMs };
    this.emitter.setMaxListeners(0);
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => this.onData(chunk));
    socket.on("error", (err) => this.log?.debug({ err }, "QMP socket error"));
    this.closedPromise = new Promise((resolve) => socket.once("close", () => resolve(this.onClose())));
  }

  /** Connects (retrying while the socket is absent or refusing), reads the greeting, negotiates capabilities. */
  static async connect(socketPath: string, opts: QmpConnectOptions = {}): Promise<QmpClient> {
    const deadline = Date.now() + (opts.deadlineMs ?? 10_000);
    const socket = await connectWithRetry(socketPath, deadline, opts.signal);
    const client = new QmpClient(socket, socketPath, opts);
    try {
      await client.waitForGreeting(deadline);
      await client.execute("qmp_capabilities", undefined, opts.signal ? { signal: opts.signal } : {});
      return client;
    } catch (err) {
      await client.close();
      if (err instanceof QmpError && err.code !== QmpErrorCode.Command) {
        throw new QmpError(QmpErrorCode.Connect, "connect", `QMP handshake on ${socketPath} failed: ${err.message}`);
      }
      throw err;
    }
  }

  /** QEMU's version and capabilities, from the greeting. */
  get greeting(): QmpGreeting {
    if (!this.greetingValue) throw new Error("QMP greeting not received yet");
    return this.greetingValue;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Resolves once the socket has closed, whoever closed it. */
  whenClosed(): Promise<void> {
    return this.closedPromise;
  }

  /** Runs a QMP command and resolves with its `return` value; rejects with a QmpError. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, opts: QmpExecuteOptions = {}): Promise<T> {
    if (this.isClosed) {
      return Promise.reject(new QmpError(QmpErrorCode.Closed, command, `QMP ${command}: connection closed`));
    }
    if (opts.signal?.aborted) {
      return Promise.reject(new QmpError(QmpErrorCode.Aborted, command, `QMP ${command}: aborted`));
    }
    const id = this.nextId++;
    const timeoutMs = opts.timeoutMs ?? this.timeouts[command] ?? DEFAULT_QMP_TIMEOUT_MS;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        cleanup();
        reject(new QmpError(QmpErrorCode.Timeout, command, `QMP ${command}: no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      const onAbort = (): void => {
        this.pending.delete(id);
        cleanup();
        reject(new QmpError(QmpErrorCode.Aborted, command, `QMP ${command}: aborted`));
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        opts.signal?.removeEventListener("abort", onAbort);
      };
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      this.pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject, cleanup });
      const msg = args === undefined ? { execute: command, id } : { execute: command, arguments: args, id };
      this.log?.debug({ id, command, args: SECRET_COMMANDS.has(command) ? "[redacted]" : args }, "QMP command");
      this.socket.write(`${JSON.stringify(msg)}\n`);
    });
  }

  on(name: "event", listener: (event: QmpEvent) => void): this;
  on(name: "close", listener: () => void): this;
  on(name: "event" | "close", listener: QmpListener): this {
    this.emitter.on(name, listener as (...args: unknown[]) => void);
    return this;
  }

  off(name: "event" | "close", listener: QmpListener): this {
    this.emitter.off(name, listener as (...args: unknown[]) => void);
    return this;
  }

  /**
   * Resolves with the next event named `name` that passes `match`. Call it BEFORE the command
   * that causes the event (e.g. device_del), or the event may pass unseen.
   */
  waitForEvent(name: string, opts: { timeoutMs: number; match?: (e: QmpEvent) => boolean; signal?: AbortSignal }): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      const done = (err: QmpError | undefined, ev?: QmpEvent): void => {
        clearTimeout(timer);
        this.emitter.off("event", onEvent);
        this.emitter.off("close", onClose);
        opts.signal?.removeEventListener("abort", onAbort);
        if (err) reject(err);
        else resolve(ev as QmpEvent);
      };
      const onEvent = (e: QmpEvent): void => {
        if (e.event === name && (opts.match?.(e) ?? true)) done(undefined, e);
      };
      const onClose = (): void => done(new QmpError(QmpErrorCode.Closed, name, `QMP event ${name}: connection closed`));
      const onAbort = (): void => done(new QmpError(QmpErrorCode.Aborted, name, `QMP event ${name}: aborted`));
      const timer = setTimeout(
        () => done(new QmpError(QmpErrorCode.Timeout, name, `QMP event ${name}: none within ${opts.timeoutMs} ms`)),
        opts.timeoutMs,
      );
      if (this.isClosed) return onClose();
      this.emitter.on("event", onEvent);
      this.emitter.on("close", onClose);
      opts.signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Closes the socket; pending calls reject with code "closed". QEMU keeps running. */
  async close(): Promise<void> {
    this.socket.destroy();
    await this.closedPromise;
  }

  private waitForGreeting(deadline: number): Promise<QmpGreeting> {
    if (this.greetingValue) return Promise.resolve(this.greetingValue);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.greetingWaiter = undefined;
        reject(new QmpError(QmpErrorCode.Timeout, "connect", "no QMP greeting (another client may hold the monitor)"));
      }, Math.max(0, deadline - Date.now()));
      const onClose = (): void => {
        clearTimeout(timer);
        reject(new QmpError(QmpErrorCode.Closed, "connect", "socket closed before the QMP greeting"));
      };
      this.emitter.once("close", onClose);
      this.greetingWaiter = (g) => {
        clearTimeout(timer);
        this.emitter.off("close", onClose);
        resolve(g);
      };
    });
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf("\n")) >= 0) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line) this.onLine(line);
    }
    if (this.buffer.length > MAX_LINE_CHARS) {
      this.log?.warn({ chars: this.buffer.length }, "QMP line too long, closing");
      this.socket.destroy();
    }
  }

  private onLine(line: string): void {
    let msg: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(line);
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("not an object");
      msg = parsed as Record<string, unknown>;
    } catch {
      this.log?.warn({ line: line.slice(0, 200) }, "QMP sent a line that is not a JSON object");
      return;
    }
    if ("QMP" in msg) {
      this.greetingValue = msg.QMP as QmpGreeting;
      this.greetingWaiter?.(this.greetingValue);
      this.greetingWaiter = undefined;
      return;
    }
    if (typeof msg.event === "string") {
      const event: QmpEvent = {
        event: msg.event,
        data: (msg.data as Record<string, unknown> | undefined) ?? {},
        timestamp: (msg.timestamp as QmpEvent["timestamp"] | undefined) ?? { seconds: 0, microseconds: 0 },
      };
      this.log?.debug({ event: event.event, data: event.data }, "QMP event");
      this.emitter.emit("event", event);
      return;
    }
    const id = typeof msg.id === "number" ? msg.id : undefined;
    const call = id === undefined ? undefined : this.pending.get(id);
    if (id === undefined || !call) {
      this.log?.debug({ id: msg.id }, "QMP reply for no pending call (timed out or aborted)");
      return;
    }
    this.pending.delete(id);
    call.cleanup();
    if ("error" in msg) {
      const e = (msg.error ?? {}) as { class?: string; desc?: string };
      this.log?.debug({ id, command: call.command, error: e }, "QMP error reply");
      call.reject(QmpError.command(call.command, e.class ?? "GenericError", e.desc ?? ""));
    } else {
      this.log?.debug({ id, command: call.command }, "QMP reply");
      call.resolve(msg.return);
    }
  }

  private onClose(): void {
    this.isClosed = true;
    for (const [id, call] of this.pending) {
      this.pending.delete(id);
      call.cleanup();
      // QEMU may close the socket before it answers `quit`: the closing is the answer.
      if (call.command === "quit") call.resolve({});
      else call.reject(new QmpError(QmpErrorCode.Closed, call.command, `QMP ${call.command}: connection closed`));
    }
    this.log?.debug("QMP connection closed");
    this.emitter.emit("close");
  }
}

async function connectWithRetry(path: string, deadline: number, signal?: AbortSignal): Promise<Socket> {
  for (;;) {
    if (signal?.aborted) throw new QmpError(QmpErrorCode.Aborted, "connect", "QMP connect aborted");
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const s = createConnection(path);
        s.once("connect", () => {
          s.off("error", reject);
          resolve(s);
        });
        s.once("error", reject);
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const retryable = code === "ENOENT" || code === "ECONNREFUSED" || code === "EAGAIN";
      if (!retryable || Date.now() + CONNECT_RETRY_MS > deadline) {
        throw new QmpError(QmpErrorCode.Connect, "connect", `cannot connect to QMP socket ${path}: ${code ?? String(err)}`);
      }
      await sleep(CONNECT_RETRY_MS);
    }
  }
}
