import { pino, type Logger } from "pino";
import pinoPretty from "pino-pretty";
import { ACCESS_LOGGER, AccessDestination, EventDestination } from "./access-log.js";

export type { Logger };

/** Paths redacted from every log line: secrets never reach the logs. */
export const REDACT_PATHS = [
  "req.headers.authorization",
  "authorization",
  "token",
  "adminToken",
  "joinToken",
  "metricsToken",
  "password",
  "login_password",
  "vnc_password",
  "sign",
  "session_id_sign",
  "secret",
];

/** How log lines are written: JSON (for a collector, journald), pretty (for a person), or auto: pretty on a terminal. */
export const LOG_FORMATS = ["auto", "pretty", "json"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** The format a choice comes to on a stream: `auto` is pretty on a terminal, JSON anywhere else (a file, a pipe, journald). */
export function resolveLogFormat(choice: LogFormat, isTty: boolean): "pretty" | "json" {
  return choice === "auto" ? (isTty ? "pretty" : "json") : choice;
}

/** A log format from its name (the flag's or BATU_LOG_FORMAT's), or undefined for anything else. */
export function parseLogFormat(text: string | undefined): LogFormat | undefined {
  return LOG_FORMATS.find((f) => f === text);
}

export interface LoggerOptions {
  level?: string | undefined;
  name?: string;
  /** Default: BATU_LOG_FORMAT, else auto. */
  format?: LogFormat | undefined;
  /** Where lines go; default stderr. Its `isTTY` decides `auto`. A stream's lines are all written synchronously. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** JSON lines without `stream`: the file descriptor they go to (default 2, stderr). */
  fd?: number;
}

/**
 * The one logger factory: lines to stderr, secrets redacted (pino redacts before any formatting, so
 * in both formats). Pretty lines are formatted in this process, synchronously: no worker thread, and
 * a line written before a crash is not lost. JSON lines to stderr follow docs/logging.md: events are
 * written synchronously, per-request access lines (accessLoggerOf) buffered for at most ACCESS_FLUSH_MS.
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const stream = opts.stream ?? process.stderr;
  const format = resolveLogFormat(opts.format ?? parseLogFormat(process.env.BATU_LOG_FORMAT) ?? "auto", stream.isTTY === true);
  const options = {
    name: opts.name ?? "batu",
    level: opts.level ?? process.env.BATU_LOG_LEVEL ?? "info",
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
  };
  if (format === "pretty") {
    return pino(options, pinoPretty({ destination: stream, sync: true, colorize: stream.isTTY === true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname,name" }));
  }
  if (opts.stream) return pino(options, opts.stream);
  const access = new AccessDestination(opts.fd ?? 2);
  const log = pino(options, new EventDestination(opts.fd ?? 2, access));
  // No name of its own: accessLoggerOf binds the logger's, name included.
  const accessLog = pino({ level: options.level, redact: options.redact }, access);
  return Object.assign(log, { [ACCESS_LOGGER]: accessLog });
}
