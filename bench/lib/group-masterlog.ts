/**
 * The master's own view of the requests of a window, from its log: fastify writes "incoming request"
 * (method, url) and "request completed" (status, responseTime in ms) for each, joined by reqId. That
 * handling time excludes the clients' side, so it is free of the bench process's event-loop delay.
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
  const routes = new Map<string, string>();
  const out: Handling = {};
  for (const line of buf.toString("utf8").split("\n")) {
    if (!line.startsWith("{") || !line.includes('"reqId"')) continue;
    let l: { reqId?: string; msg?: string; req?: { method?: string; url?: string }; res?: { statusCode?: number }; responseTime?: number };
    try {
      l = JSON.parse(line);
    } catch {
      continue; // a line cut by the window's end
    }
    if (!l.reqId) continue;
    if (l.msg === "incoming request" && l.req) {
      routes.set(l.reqId, `${l.req.method} ${(l.req.url ?? "").split("?")[0]}`);
    } else if (l.msg === "request completed" && typeof l.responseTime === "number") {
      const route = routes.get(l.reqId);
      if (!route) continue; // came in before the window
      routes.delete(l.reqId);
      const acc = (out[route] ??= { ms: [], statuses: {} });
      acc.ms.push(l.responseTime);
      const s = String(l.res?.statusCode ?? "?");
      acc.statuses[s] = (acc.statuses[s] ?? 0) + 1;
    }
  }
  return out;
}
