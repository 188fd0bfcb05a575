import { beforeAll, describe, expect, it } from "vitest";
import { encodeAddress } from "@polkadot/util-crypto";
import { stringToU8a, u8aToHex, u8aWrapBytes } from "@polkadot/util";
import { canonicalWallet, signatureBytes, verifySignature, walletPublicKey } from "./signature.js";
import { cryptoWaitReady, testWallet } from "./testing.js";

beforeAll(async () => {
  await cryptoWaitReady();
});

describe("verifySignature", () => {
  const nonce = "5q7KRn4d8EmXFFsim8vHBp23N2CpERbD2mWR3WCo1o3teZnGxYEh4N6";

  for (const type of ["sr25519", "ed25519"] as const) {
    describe(type, () => {
      it("accepts the nonce signed as DBC's clients sign it, 0x or not, SS58 or hex wallet", () => {
        const w = testWallet("//renter", type);
        const sig = w.sign(nonce);
        expect(sig).toMatch(/^0x[0-9a-f]{128}$/);
        expect(verifySignature(nonce, sig, w.address)).toBe(true);
        expect(verifySignature(nonce, sig.slice(2), w.address)).toBe(true);
        expect(verifySignature(nonce, sig.toUpperCase().replace("0X", "0x"), w.address)).toBe(true);
        expect(verifySignature(nonce, sig, w.publicKeyHex)).toBe(true);
        expect(verifySignature(nonce, sig, w.publicKeyHex.slice(2))).toBe(true);
        expect(verifySignature(nonce, sig, w.pair.publicKey)).toBe(true);
      });

      it("accepts the wallet under any SS58 network prefix", () => {
        const w = testWallet("//renter", type);
        for (const prefix of [0, 2, 42]) {
          expect(verifySignature(nonce, w.sign(nonce), encodeAddress(w.pair.publicKey, prefix))).toBe(true);
        }
      });

      it("refuses another message, another wallet's signature, and the <Bytes>-wrapped form", () => {
        const w = testWallet("//renter", type);
        const other = testWallet("//other", type);
        expect(verifySignature(nonce + "x", w.sign(nonce), w.address)).toBe(false);
        expect(verifySignature(nonce, other.sign(nonce), w.address)).toBe(false);
        const wrapped = u8aToHex(w.pair.sign(u8aWrapBytes(stringToU8a(nonce))));
        expect(verifySignature(nonce, wrapped, w.address)).toBe(false);
      });
    });
  }

  it("returns false, never throws, on garbage", () => {
    const w = testWallet("//renter");
    const sig = w.sign(nonce);
    const garbage: unknown[] = [undefined, null, 12, {}, [], "", "0x", "zz", "0x1234", sig + "00", sig.slice(0, -2), "0x" + "g".repeat(128)];
    for (const g of garbage) {
      expect(verifySignature(nonce, g, w.address)).toBe(false);
      expect(verifySignature(nonce, sig, g)).toBe(false);
    }
    expect(verifySignature(nonce, sig, w.address.slice(0, -1) + (w.address.endsWith("a") ? "b" : "a"))).toBe(false); // bad checksum
    expect(verifySignature(nonce, sig, new Uint8Array(31))).toBe(false);
    expect(verifySignature(nonce, "0x" + "0".repeat(128), w.address)).toBe(false);
    expect(verifySignature(12 as unknown as string, sig, w.address)).toBe(false);
  });
});

describe("wallet parsing", () => {
  it("reads SS58 and hex keys, canonicalises to prefix 42", () => {
    const w = testWallet("//renter");
    expect(walletPublicKey(w.address)).toEqual(w.pair.publicKey);
    expect(canonicalWallet(encodeAddress(w.pair.publicKey, 0))).toBe(w.address);
    expect(canonicalWallet(w.publicKeyHex.slice(2).toUpperCase())).toBe(w.address);
    expect(canonicalWallet("not a wallet")).toBeUndefined();
    expect(canonicalWallet("0x" + "ab".repeat(33))).toBeUndefined();
    expect(signatureBytes("ab".repeat(64))).toHaveLength(64);
    expect(signatureBytes("ab".repeat(65))).toBeUndefined();
  });
});
