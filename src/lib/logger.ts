import { pino, destination, type Logger } from "pino";

export type { Logger };

/** Paths redacted from every log line: secrets never reach the logs. */
export const REDACT_PATHS = [
  "req.headers.authorization",
  "authorization",
  "token",
  "adminToken",
  "joinToken",
  "password",
  "login_password",
  "vnc_password",
  "sign",
  "session_id_sign",
  "secret",
];

/** The one logger factory: JSON lines to stderr, secrets redacted. */
export function createLogger(opts: { level?: string; name?: string } = {}): Logger {
  return pino(
    {
      name: opts.name ?? "batu",
      level: opts.level ?? process.env.BATU_LOG_LEVEL ?? "info",
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    },
    destination(2),
  );
}
