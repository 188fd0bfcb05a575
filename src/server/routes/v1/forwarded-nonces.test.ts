import { describe, expect, it } from "vitest";
import { forwardedNonces, FORWARDED_NONCES_FIELD } from "./forwarded-nonces.js";

const signer = "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d";

describe("forwardedNonces: the signers and nonces a master's forwarded call names", () => {
  it("none when absent; each one when well formed", () => {
    expect(forwardedNonces({ peer_nodes_list: [] })).toEqual([]);
    expect(forwardedNonces({ [FORWARDED_NONCES_FIELD]: [{ signer, nonce: "n1" }] })).toEqual([{ signer, nonce: "n1" }]);
  });

  it("refuses a malformed field, naming it", () => {
    for (const bad of ["x", [{ signer: "zz", nonce: "n" }], [{ signer, nonce: "" }], [{ signer, nonce: "n".repeat(257) }], [null], Array(65).fill({ signer, nonce: "n" })]) {
      expect(() => forwardedNonces({ [FORWARDED_NONCES_FIELD]: bad })).toThrow(`${FORWARDED_NONCES_FIELD} is invalid`);
    }
  });
});
