import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { PassThrough } from "node:stream";
import Fastify from "fastify";
import { afterEach, describe, expect, it, vi } from "vitest";
import { RequestLog } from "../server/request-log.js";
import { ACCESS_FLUSH_MS, accessLoggerOf } from "./access-log.js";
import { createLogger } from "./logger.js";

const SECRET = "s3cret-0123456789abcdef";
/** Long enough for the flush timer on a loaded machine; the assertions wait for an outcome, not a time. */
const EVENTUALLY = { timeout: 5_000, interval: 10 };

let dir: string | null = null;
const fds: number[] = [];
afterEach(() => {
  for (const fd of fds.splice(0)) closeSync(fd);
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = null;
});

/** A JSON logger writing to a fresh file, as the agent's to its stderr, and that file's lines. */
function fileLogger() {
  dir ??= mkdtempSync(join(tmpdir(), "batu-access-log-"));
  const path = join(dir, `log-${fds.length}`);
  const fd = openSync(path, "a");
  fds.push(fd);
  const log = createLogger({ format: "json", fd, level: "info" });
  const text = () => readFileSync(path, "utf8");
  const lines = () => text().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  return { log, text, lines };
}

describe("the access log", () => {
  it("buffers access lines, writing them out within the flush window, with the logger's fields", async () => {
    const { log, text, lines } = fileLogger();
    const access = accessLoggerOf(log.child({ node: "n1" }));
    access.info({ reqId: "req-1", req: { method: "POST", url: "/api/v1/tasks" } }, "request completed");
    access.info({ reqId: "req-2" }, "request completed");
    // Nothing written by the call itself: the request did not pay for a write.
    expect(text()).toBe("");
    await vi.waitFor(() => expect(lines()).toHaveLength(2), EVENTUALLY);
    expect(lines()[0]).toMatchObject({ level: 30, name: "batu", node: "n1", reqId: "req-1", req: { url: "/api/v1/tasks" }, msg: "request completed" });
    expect(lines()[1]).toMatchObject({ reqId: "req-2" });
    // One name: the access logger has none of its own, it carries the logger's.
    expect(text().match(/"name"/g)).toHaveLength(2);
    expect(ACCESS_FLUSH_MS).toBeLessThanOrEqual(100);
  });

  it("writes events synchronously, after the access lines logged before them", () => {
    const { log, lines } = fileLogger();
    const vmLog = log.child({ node: "n1" });
    accessLoggerOf(vmLog).info({ reqId: "req-1" }, "request completed");
    vmLog.info({ vm: "vm-1", from: "stopped", to: "running" }, "vm state changed");
    vmLog.warn({ remote: "127.0.0.1" }, "auth refused");
    expect(lines().map((l) => l.msg)).toEqual(["request completed", "vm state changed", "auth refused"]);
    expect(lines()[1]).toMatchObject({ node: "n1", vm: "vm-1", to: "running" });
  });

  it("redacts secrets in access lines as in events", async () => {
    const { log, text } = fileLogger();
    accessLoggerOf(log).info({ req: { headers: { authorization: `Bearer ${SECRET}` } }, token: SECRET, session_id_sign: SECRET }, "request completed");
    await vi.waitFor(() => expect(text()).toContain("request completed"), EVENTUALLY);
    expect(text()).not.toContain(SECRET);
    expect(JSON.parse(text())).toMatchObject({ token: "[redacted]", session_id_sign: "[redacted]", req: { headers: { authorization: "[redacted]" } } });
  });

  it("follows the logger's level", async () => {
    const { log, lines } = fileLogger();
    const quiet = log.child({});
    quiet.level = "warn";
    const access = accessLoggerOf(quiet);
    access.info("request completed");
    access.error("request failed");
    await vi.waitFor(() => expect(lines().map((l) => l.msg)).toEqual(["request failed"]), EVENTUALLY);
  });

  it("is the logger itself where lines go to a stream (a terminal's pretty output, a test's): all synchronous", () => {
    const out = new PassThrough();
    const log = createLogger({ format: "json", stream: out });
    expect(accessLoggerOf(log)).toBe(log);
  });

  it("is what RequestLog writes fastify's one line per request to, without the query, bound to the request", async () => {
    const { log, lines } = fileLogger();
    const appLog = log.child({ node: "n1" });
    const app = Fastify({ loggerInstance: appLog, logController: new RequestLog(accessLoggerOf(appLog)) });
    app.post("/api/v1/tasks", async () => ({ errcode: 0 }));
    try {
      const r = await app.inject({ method: "POST", url: "/api/v1/tasks?session_id_sign=abc", payload: {} });
      expect(r.statusCode).toBe(200);
      await vi.waitFor(() => expect(lines().filter((l) => l.msg === "request completed")).toHaveLength(1), EVENTUALLY);
      const line = lines().find((l) => l.msg === "request completed")!;
      expect(line).toMatchObject({ level: 30, name: "batu", node: "n1", reqId: expect.stringMatching(/^req-/), req: { method: "POST", url: "/api/v1/tasks" }, res: { statusCode: 200 } });
      expect(typeof line.responseTime).toBe("number");
      expect(JSON.stringify(line)).not.toContain("abc");
    } finally {
      await app.close();
    }
  });

  it("loses at most the last flush window of access lines to a SIGKILL, and never an event", async () => {
    const logger = resolve(import.meta.dirname, "logger.ts");
    const accessLog = resolve(import.meta.dirname, "access-log.ts");
    // The child: two events, 200 access lines (some written in bursts, the rest left to the timer: no
    // event follows them), a pause longer than the window, 20 more, then "ready".
    const script = `
      const { createLogger } = await import(${JSON.stringify(logger)});
      const { accessLoggerOf } = await import(${JSON.stringify(accessLog)});
      const log = createLogger({ format: "json" });
      const access = accessLoggerOf(log);
      log.info({ n: 1 }, "event");
      log.child({ node: "n1" }).warn({ n: 2 }, "event");
      for (let i = 0; i < 200; i++) access.info({ i, pad: "x".repeat(200) }, "old access");
      setTimeout(() => {
        for (let i = 0; i < 20; i++) access.info({ i }, "new access");
        process.stdout.write("ready\\n");
        setInterval(() => {}, 1000);
      }, ${ACCESS_FLUSH_MS * 3});
    `;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "pipe"] });
    const err: Buffer[] = [];
    child.stderr.on("data", (c: Buffer) => err.push(c));
    const exited = new Promise<NodeJS.Signals | null>((res) => child.on("close", (_code, signal) => res(signal)));
    await new Promise<void>((res, rej) => {
      child.stdout.on("data", (c: Buffer) => c.toString().includes("ready") && res());
      child.on("error", rej);
      child.on("exit", (code) => rej(new Error(`child exited (${code}) before it was ready: ${Buffer.concat(err).toString()}`)));
    });
    child.kill("SIGKILL");
    expect(await exited).toBe("SIGKILL");
    const text = Buffer.concat(err).toString("utf8");
    // Whole lines only: nothing cut by another writer on the shared fd.
    const lines = text.split("\n").filter(Boolean).map((l) => JSON.parse(l) as { msg: string; n?: number; i?: number });
    expect(lines.filter((l) => l.msg === "event").map((l) => l.n)).toEqual([1, 2]);
    expect(lines.filter((l) => l.msg === "old access").map((l) => l.i)).toEqual([...Array(200).keys()]);
  });
});
