import { describe, expect, it } from "vitest";
import {
  discoveryProof,
  JoinProofVerifier,
  masterProof,
  memberJoinProof,
  newNonce,
  verifyDiscoveryProof,
  verifyMasterProof,
  type JoinClaim,
} from "./join-proof.js";

const TOKEN = "join-token-abcdefghijklmnopqrstuvwxyz";
const MASTER = "aa".repeat(32);

describe("master proof", () => {
  it("checks only against the same token, node, group and challenge", () => {
    const challenge = newNonce();
    const hello = { node_id: MASTER, group_name: "group1", proof: masterProof(TOKEN, MASTER, "group1", challenge) };
    expect(verifyMasterProof(TOKEN, hello, challenge)).toBe(true);
    expect(verifyMasterProof("another-join-token-0123456789", hello, challenge)).toBe(false);
    expect(verifyMasterProof(TOKEN, hello, newNonce())).toBe(false);
    expect(verifyMasterProof(TOKEN, { ...hello, group_name: "group2" }, challenge)).toBe(false);
    expect(verifyMasterProof(TOKEN, { ...hello, node_id: "bb".repeat(32) }, challenge)).toBe(false);
    expect(verifyMasterProof(TOKEN, { ...hello, proof: "not hex" }, challenge)).toBe(false);
  });
});

describe("discovery proof", () => {
  it("is bound to the address the answer comes from: a relayed answer, or a hello proof, does not pass", () => {
    const challenge = newNonce();
    const answer = { node_id: MASTER, group_name: "group1", proof: discoveryProof(TOKEN, MASTER, "group1", challenge, "10.0.0.1:10000") };
    expect(verifyDiscoveryProof(TOKEN, answer, challenge, "10.0.0.1:10000")).toBe(true);
    expect(verifyDiscoveryProof(TOKEN, answer, challenge, "10.0.0.66:10000")).toBe(false);
    expect(verifyDiscoveryProof(TOKEN, answer, challenge, "10.0.0.1:10001")).toBe(false);
    expect(verifyDiscoveryProof(TOKEN, answer, newNonce(), "10.0.0.1:10000")).toBe(false);
    const hello = { ...answer, proof: masterProof(TOKEN, MASTER, "group1", challenge) };
    expect(verifyDiscoveryProof(TOKEN, hello, challenge, "10.0.0.1:10000")).toBe(false);
    expect(verifyMasterProof(TOKEN, answer, challenge)).toBe(false);
  });
});

describe("member join proof", () => {
  let clock = 1_800_000_000_000;
  const verifier = new JoinProofVerifier(() => new Date(clock));
  const claim = (over: Partial<JoinClaim> = {}): JoinClaim => ({
    masterNodeId: MASTER,
    nodeId: "cc".repeat(32),
    address: "10.0.0.2:10000",
    nickname: "gpu-2",
    at: clock,
    nonce: newNonce(),
    tlsPort: 10443,
    certSha256: "d".repeat(64),
    ...over,
  });

  it("accepts a fresh proof once; a replay of it is refused", () => {
    const c = claim();
    const mac = memberJoinProof(TOKEN, c);
    expect(verifier.check(TOKEN, c, mac)).toBeNull();
    expect(verifier.check(TOKEN, c, mac)).toMatch(/replayed/);
  });

  it("refuses a proof made with another token, or for another master, address or node", () => {
    const c = claim();
    expect(verifier.check(TOKEN, c, memberJoinProof("another-join-token-0123456789", c))).toMatch(/join token/);
    const mac = memberJoinProof(TOKEN, c);
    expect(verifier.check(TOKEN, { ...c, masterNodeId: "bb".repeat(32) }, mac)).toMatch(/join token/);
    expect(verifier.check(TOKEN, { ...c, address: "10.6.6.6:10000" }, mac)).toMatch(/join token/);
    expect(verifier.check(TOKEN, { ...c, nodeId: "dd".repeat(32) }, mac)).toMatch(/join token/);
    // The refusals above did not burn the nonce: the genuine claim still passes.
    expect(verifier.check(TOKEN, c, mac)).toBeNull();
  });

  it("refuses a proof more than 30 s away from the master's clock", () => {
    const old = claim({ at: clock - 31_000 });
    expect(verifier.check(TOKEN, old, memberJoinProof(TOKEN, old))).toMatch(/30 s/);
    const future = claim({ at: clock + 31_000 });
    expect(verifier.check(TOKEN, future, memberJoinProof(TOKEN, future))).toMatch(/30 s/);
    clock += 10_000;
    const late = claim({ at: clock - 29_000 });
    expect(verifier.check(TOKEN, late, memberJoinProof(TOKEN, late))).toBeNull();
  });
});
