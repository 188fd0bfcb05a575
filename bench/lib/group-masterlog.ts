/**
 * The master's own view of the requests of a window, from its log: the agent writes one "request
 * completed" line per request (method, path, status, responseTime in ms; src/server/request-log.ts;
 * heartbeats at debug, so the bench runs the master with BATU_LOG_LEVEL=debug). That handling time
 * excludes the clients' side, so it is free of the bench process's event-loop delay.
 */
import { closeSync, openSync, readSync } from "node:fs";

/** Per "METHOD /path" (query dropped): the master's handling times in ms, and the statuses seen. */
export type Handling = Record<string, { ms: number[]; statuses: Record<string, number> }>;

/** Reads bytes [from, to) of the log and pairs its request lines. */
export function masterHandling(logPath: string, from: number, to: number): Handling {
  const buf = Buffer.alloc(Math.max(0, to - from));
  const fd = openSync(logPath, "r");
  try {
    readSync(fd, buf, 0, buf.length, from);
  } finally {
    closeSync(fd);
  }
  const out: Handling = {};
  for (const line of buf.toString("utf8").split("\n")) {
    if (!line.startsWith("{") || !line.includes('"request completed"')) continue;
    let l: { msg?: string; req?: { method?: string; url?: string }; res?: { statusCode?: number }; responseTime?: number };
    try {
      l = JSON.parse(line);
    } catch {
      continue; // a line cut by the window's end
    }
    if (l.msg !== "request completed" || !l.req || typeof l.responseTime !== "number") continue;
    const route = `${l.req.method} ${(l.req.url ?? "").split("?")[0]}`;
    const acc = (out[route] ??= { ms: [], statuses: {} });
    acc.ms.push(l.responseTime);
    const st = String(l.res?.statusCode ?? "?");
    acc.statuses[st] = (acc.statuses[st] ?? 0) + 1;
  }
  return out;
}
