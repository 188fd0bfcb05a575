import { describe, expect, it } from "vitest";
import { PassThrough } from "node:stream";
import { createLogger, parseLogFormat, resolveLogFormat, type LogFormat } from "./logger.js";

/** A stream that collects what is written to it, passing for a terminal or not. */
function captured(isTty: boolean): PassThrough & { isTTY: boolean; text: () => string } {
  const chunks: Buffer[] = [];
  const s = Object.assign(new PassThrough(), { isTTY: isTty, text: () => Buffer.concat(chunks).toString("utf8") });
  s.on("data", (c: Buffer) => chunks.push(c));
  return s;
}

const SECRET = "s3cret-0123456789abcdef";

function logOnce(format: LogFormat | undefined, isTty: boolean): string {
  const out = captured(isTty);
  const log = createLogger({ format, stream: out, level: "info" });
  log.info({ token: SECRET, req: { headers: { authorization: `Bearer ${SECRET}` } }, vm: "vm-1" }, "token rotated");
  log.flush();
  return out.text();
}

describe("the log format", () => {
  it("is pretty on a terminal and JSON anywhere else when auto; as asked otherwise", () => {
    expect(resolveLogFormat("auto", true)).toBe("pretty");
    expect(resolveLogFormat("auto", false)).toBe("json");
    for (const tty of [true, false]) {
      expect(resolveLogFormat("pretty", tty)).toBe("pretty");
      expect(resolveLogFormat("json", tty)).toBe("json");
    }
    expect(["auto", "pretty", "json", "JSON", "", undefined].map(parseLogFormat)).toEqual(["auto", "pretty", "json", undefined, undefined, undefined]);
  });

  it("writes one JSON object a line off a terminal, and lines for a person on one", () => {
    const json = logOnce("auto", false);
    const lines = json.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ msg: "token rotated", vm: "vm-1", level: 30 });
    const pretty = logOnce("auto", true);
    expect(() => JSON.parse(pretty.trim().split("\n")[0]!)).toThrow();
    expect(pretty).toMatch(/INFO/);
    expect(pretty).toContain("token rotated");
    expect(pretty).toContain("vm-1");
    // Explicit choices win over the stream.
    expect(() => JSON.parse(logOnce("json", true).trim())).not.toThrow();
    expect(logOnce("pretty", false)).toMatch(/INFO.*token rotated/);
  });

  it("redacts secrets in both formats", () => {
    for (const format of ["json", "pretty"] as const) {
      const text = logOnce(format, false);
      expect(text, format).toContain("token rotated");
      expect(text, format).not.toContain(SECRET);
      expect(text, format).toContain("[redacted]");
    }
  });

  it("follows BATU_LOG_FORMAT when no format is given", () => {
    const before = process.env.BATU_LOG_FORMAT;
    try {
      process.env.BATU_LOG_FORMAT = "pretty";
      expect(logOnce(undefined, false)).toMatch(/INFO.*token rotated/);
      process.env.BATU_LOG_FORMAT = "json";
      expect(() => JSON.parse(logOnce(undefined, true).trim())).not.toThrow();
    } finally {
      if (before === undefined) delete process.env.BATU_LOG_FORMAT;
      else process.env.BATU_LOG_FORMAT = before;
    }
  });
});
