import { describe, expect, it } from "vitest";
import { spinnerAllowed, startSpinner } from "./spinner.js";

/** A stream that records what is written, a terminal or not. */
const stream = (isTTY: boolean) => {
  const written: string[] = [];
  return { isTTY, write: (s: string) => written.push(s) > 0, written } as unknown as NodeJS.WriteStream & { written: string[] };
};

describe("spinner", () => {
  it("draws only on a terminal, and never for a script's format", () => {
    expect(spinnerAllowed(true, stream(true))).toBe(true);
    expect(spinnerAllowed(true, stream(false))).toBe(false);
    expect(spinnerAllowed(false, stream(true))).toBe(false);
  });

  it("draws its text, then clears its line and leaves the final word", () => {
    const out = stream(true);
    const s = startSpinner("VM abc", true, out);
    s.update("VM abc: guest booting");
    s.stop("ready");
    expect(out.written[0]).toMatch(/^\r\x1b\[2K. VM abc$/);
    expect(out.written.at(-1)).toBe("\r\x1b[2Kready\n");
  });

  it("disabled, it writes nothing at all", () => {
    const out = stream(false);
    const s = startSpinner("x", false, out);
    s.update("y");
    s.stop("z");
    expect(out.written).toEqual([]);
  });
});
