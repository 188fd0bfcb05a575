import { describe, expect, it } from "vitest";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadIdentity } from "./identity.js";
import { HostTokens } from "./tokens.js";

describe("HostTokens", () => {
  it("rotates a token on disk (0600, whole) and in force at once; the other token is untouched", async () => {
    const dir = mkdtempSync(join(tmpdir(), "batu-tokens-"));
    const id = await loadIdentity(dir);
    const tokens = new HostTokens(dir, { admin: id.adminToken, join: id.joinToken, metrics: id.metricsToken });
    expect(tokens.rotate("admin")).toBe(join(dir, "admin.token"));
    expect(tokens.admin()).not.toBe(id.adminToken);
    expect(tokens.admin()).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(readFileSync(join(dir, "admin.token"), "utf8")).toBe(`${tokens.admin()}\n`);
    expect(statSync(join(dir, "admin.token")).mode & 0o777).toBe(0o600);
    expect(tokens.join()).toBe(id.joinToken);
    // What the next start reads is what is in force now; no temporary file is left.
    expect((await loadIdentity(dir)).adminToken).toBe(tokens.admin());
    expect(readdirSync(dir).filter((f) => f.includes(".tmp"))).toEqual([]);
  });

  it("replace puts a given token in force, its file first (0600, whole): another master's rotation", async () => {
    const dir = mkdtempSync(join(tmpdir(), "batu-tokens-"));
    const id = await loadIdentity(dir);
    const tokens = new HostTokens(dir, { admin: id.adminToken, join: id.joinToken, metrics: id.metricsToken });
    tokens.replace("metrics", "the-group-s-metrics-token");
    expect([tokens.metrics(), tokens.get("metrics")]).toEqual(["the-group-s-metrics-token", "the-group-s-metrics-token"]);
    expect(readFileSync(tokens.file("metrics"), "utf8")).toBe("the-group-s-metrics-token\n");
    expect(statSync(tokens.file("metrics")).mode & 0o777).toBe(0o600);
    expect((await loadIdentity(dir)).metricsToken).toBe("the-group-s-metrics-token");
    expect(tokens.admin()).toBe(id.adminToken);
  });

  it("changes nothing when the file cannot be written", async () => {
    if (process.getuid?.() === 0) return; // root writes anywhere: test/tls.test.ts covers rotation end to end
    const dir = mkdtempSync(join(tmpdir(), "batu-tokens-"));
    const id = await loadIdentity(dir);
    const tokens = new HostTokens(dir, { admin: id.adminToken, join: id.joinToken, metrics: id.metricsToken });
    chmodSync(dir, 0o500);
    try {
      expect(() => tokens.rotate("join")).toThrow();
      expect(tokens.join()).toBe(id.joinToken);
    } finally {
      chmodSync(dir, 0o700);
    }
  });
});
