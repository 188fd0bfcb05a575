import { describe, expect, it } from "vitest";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { Keyring } from "@polkadot/keyring";
import { u8aToHex } from "@polkadot/util";
import { nodeKeyAuthenticator } from "../auth/signed-envelope.js";
import { ImageRequestVerifier, signImageRequest } from "./request-signature.js";

await cryptoWaitReady();
const node = (seed: string) => {
  const pair = new Keyring({ type: "sr25519" }).addFromUri(seed);
  const id = u8aToHex(pair.publicKey).slice(2);
  return { id, key: nodeKeyAuthenticator(id, (m) => pair.sign(m)) };
};

describe("a node's signature on an image request", () => {
  const member = node("//image-member");
  const stranger = node("//image-stranger");
  const verifier = () => new ImageRequestVerifier((id) => id === member.id);

  it("names the group node that signed; an unsigned request is nobody's", () => {
    const headers = signImageRequest(member.key, member.id, "get", "/image-server/v1/images/a.qcow2");
    expect(verifier().verify(headers, "GET", "/image-server/v1/images/a.qcow2")).toBe(member.id);
    expect(verifier().verify({}, "GET", "/image-server/v1/images/a.qcow2")).toBeNull();
  });

  it("takes a stranger's signature for nobody's; refuses another path or method, a replay and a stale time", () => {
    const v = verifier();
    expect(v.verify(signImageRequest(stranger.key, stranger.id, "GET", "/x"), "GET", "/x")).toBeNull();
    expect(() => v.verify(signImageRequest(member.key, member.id, "GET", "/x"), "GET", "/y")).toThrow(/signature does not hold/);
    expect(() => v.verify(signImageRequest(member.key, member.id, "GET", "/x"), "PUT", "/x")).toThrow(/signature does not hold/);
    const once = signImageRequest(member.key, member.id, "GET", "/x");
    expect(v.verify(once, "GET", "/x")).toBe(member.id);
    expect(() => v.verify(once, "GET", "/x")).toThrow(/used already/);
    expect(() => v.verify(signImageRequest(member.key, member.id, "GET", "/x", new Date(Date.now() - 120_000)), "GET", "/x")).toThrow(/time/);
  });
});
