import { mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { waitForMarker } from "./ready-watch.js";
import { rotateSerialLog } from "./serial-log.js";

const dir = () => mkdtemp(join(tmpdir(), "batu-serial-"));

describe("rotateSerialLog", () => {
  it("leaves a log under its cap; past it, keeps one previous part and starts the log again", async () => {
    const log = join(await dir(), "serial.log");
    expect(await rotateSerialLog(log, 10)).toBe(false); // no log yet
    await writeFile(log, "short\n");
    expect(await rotateSerialLog(log, 10)).toBe(false);
    expect(existsSync(`${log}.1`)).toBe(false);
    await writeFile(log, "x".repeat(11));
    expect(await rotateSerialLog(log, 10)).toBe(true);
    expect((await stat(log)).size).toBe(0);
    expect(await readFile(`${log}.1`, "utf8")).toBe("x".repeat(11));
    await writeFile(log, "y".repeat(12));
    expect(await rotateSerialLog(log, 10)).toBe(true);
    expect(await readFile(`${log}.1`, "utf8")).toBe("y".repeat(12)); // only one previous part, ever
  });
});

describe("waitForMarker on what a hostile guest writes", () => {
  it("finds the marker after megabytes without a newline, reading in bounded chunks", async () => {
    const log = join(await dir(), "serial.log");
    await writeFile(log, `${"A".repeat(8 * 2 ** 20)}\nBATU-READY\n`);
    expect(await waitForMarker(log, "BATU-READY", new AbortController().signal)).toBe(true);
  });

  it("never takes the tail of an over-long line for the marker", async () => {
    const log = join(await dir(), "serial.log");
    await writeFile(log, `${"A".repeat(10_000)}BATU-READY\n`);
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 300);
    expect(await waitForMarker(log, "BATU-READY", stop.signal, { pollMs: 20 })).toBe(false);
  });

  it("reads a rotated log from its new start", async () => {
    const log = join(await dir(), "serial.log");
    await writeFile(log, "boot noise\n".repeat(100));
    const stop = new AbortController();
    const found = waitForMarker(log, "BATU-READY", stop.signal, { pollMs: 20 });
    await new Promise((r) => setTimeout(r, 60));
    await writeFile(log, "BATU-READY\n"); // rotated, then the guest's next line
    setTimeout(() => stop.abort(), 2000);
    expect(await found).toBe(true);
  });
});
