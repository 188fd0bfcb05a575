import { describe, expect, it } from "vitest";
import { mkdtempSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sr25519Verify } from "@polkadot/util-crypto";
import { loadIdentity } from "./identity.js";

describe("loadIdentity", () => {
  it("creates a key and tokens once (mode 0600) and keeps them", async () => {
    const dir = mkdtempSync(join(tmpdir(), "batu-id-"));
    const a = await loadIdentity(dir);
    expect(a.nodeId).toMatch(/^[0-9a-f]{64}$/);
    for (const f of ["node.key", "admin.token", "join.token", "metrics.token"]) expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
    const b = await loadIdentity(dir);
    expect([b.nodeId, b.adminToken, b.joinToken]).toEqual([a.nodeId, a.adminToken, a.joinToken]);
  });

  it("signs with the key whose public key is the node id", async () => {
    const id = await loadIdentity(mkdtempSync(join(tmpdir(), "batu-id-")));
    const sig = id.sign("hello");
    expect(sr25519Verify("hello", sig, id.publicKey)).toBe(true);
    expect(sr25519Verify("hellO", sig, id.publicKey)).toBe(false);
  });

  it("refuses a damaged key file, naming it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "batu-id-"));
    writeFileSync(join(dir, "node.key"), JSON.stringify({ type: "sr25519", seed: "0x12" }));
    await expect(loadIdentity(dir)).rejects.toThrow(/node\.key: field "seed"/);
  });
});
