import { describe, expect, it } from "vitest";
import { LentBuffers } from "./lent-buffers.js";

const parts = (...texts: string[]) => texts.map((t) => Buffer.from(t));

describe("LentBuffers", () => {
  it("joins the parts exactly, in a buffer reused once released, never while lent", () => {
    const pool = new LentBuffers(1);
    const a = pool.concat(parts('{"a":', "[1,2]", "}"));
    expect(a.bytes.toString()).toBe('{"a":[1,2]}');
    // Still lent: another reply gets its own buffer, and the first keeps its bytes.
    const b = pool.concat(parts("xyz"));
    expect(b.bytes.buffer).not.toBe(a.bytes.buffer);
    expect(a.bytes.toString()).toBe('{"a":[1,2]}');
    a.release();
    a.release();
    // The released buffer serves a shorter reply: only its own bytes, nothing left over from before.
    const c = pool.concat(parts("ok"));
    expect(c.bytes.buffer).toBe(a.bytes.buffer);
    expect(c.bytes.toString()).toBe("ok");
    // A reply too long for any free buffer gets a new one.
    c.release();
    const d = pool.concat(parts("x".repeat(100)));
    expect(d.bytes.buffer).not.toBe(a.bytes.buffer);
    expect(d.bytes.length).toBe(100);
  });

  it("keeps at most `keep` buffers", () => {
    const pool = new LentBuffers(1);
    const [a, b] = [pool.concat(parts("a")), pool.concat(parts("b"))];
    a.release();
    b.release();
    expect(pool.concat(parts("c")).bytes.buffer).toBe(a.bytes.buffer);
    expect(pool.concat(parts("d")).bytes.buffer).not.toBe(b.bytes.buffer);
  });
});
