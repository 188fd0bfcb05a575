import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { verifySignature } from "../../auth/signature.js";
import { parseUntil } from "./rent.js";
import { walletCommand } from "./wallet.js";

beforeAll(async () => {
  await cryptoWaitReady();
});
afterEach(() => {
  vi.restoreAllMocks();
  delete process.env.BATU_WALLET_SECRET;
});

async function output(args: string[]): Promise<string> {
  const lines: string[] = [];
  vi.spyOn(console, "log").mockImplementation((line: string) => void lines.push(line));
  await walletCommand(args);
  return lines.join("\n");
}

describe("batu wallet", () => {
  it("new → sign → nonce: every identity field, verifiable", async () => {
    for (const type of ["sr25519", "ed25519"]) {
      const made = JSON.parse(await output(["new", "--type", type, "--json"])) as { address: string; secret: string };
      expect(made.secret.split(" ")).toHaveLength(12);
      process.env.BATU_WALLET_SECRET = made.secret;
      const sign = await output(["sign", "a-session-id", "--type", type]);
      expect(sign).toMatch(/^0x[0-9a-f]{128}$/);
      expect(verifySignature("a-session-id", sign, made.address)).toBe(true);
      const id = JSON.parse(await output(["nonce", "--type", type])) as { wallet: string; nonce: string; sign: string };
      expect(id.wallet).toBe(made.address);
      expect(verifySignature(id.nonce, id.sign, id.wallet)).toBe(true);
    }
  });

  it("--save writes the secret to a new 0600 file, prints it nowhere, and --secret-file reads it", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "batu-wallet-")), "w.secret");
    const printed = await output(["new", "--save", file]);
    const secret = readFileSync(file, "utf8").trim();
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(printed).not.toContain(secret);
    const address = /address:\s+(\S+)/.exec(printed)![1]!;
    expect(verifySignature("m", await output(["sign", "m", "--secret-file", file]), address)).toBe(true);
    await expect(output(["new", "--save", file])).rejects.toThrow(/never overwritten/);
  });

  it("refuses to sign without a secret", async () => {
    await expect(output(["sign", "x"])).rejects.toThrow(/BATU_WALLET_SECRET/);
  });
});

describe("batu rent --until", () => {
  it("reads durations and ISO times", () => {
    const now = new Date("2026-01-01T00:00:00Z");
    expect(parseUntil("30d", now).toISOString()).toBe("2026-01-31T00:00:00.000Z");
    expect(parseUntil("90m", now).toISOString()).toBe("2026-01-01T01:30:00.000Z");
    expect(parseUntil("2026-07-01T00:00:00+02:00", now).toISOString()).toBe("2026-06-30T22:00:00.000Z");
    expect(() => parseUntil("soon", now)).toThrow(/--until/);
  });
});
