import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Value } from "@sinclair/typebox/value";
import { DbcError, DbcErrors, errorEnvelope, ok } from "./envelope.js";
import { DbcRequest, parseDbcRequest, peerNodeId } from "./request.js";

const NODE = "d".repeat(64);

function refusal(body: unknown): [number, number, string] {
  try {
    parseDbcRequest(body);
  } catch (e) {
    if (e instanceof DbcError) return [e.httpStatus, e.errcode, e.message];
    throw e;
  }
  throw new Error("accepted");
}

describe("parseDbcRequest", () => {
  it("accepts DBC's three identity shapes, threshold as a string or a number", () => {
    const base = { peer_nodes_list: [NODE, "ignored"], additional: { a: "1" }, extra: true };
    expect(parseDbcRequest({ ...base, wallet: "w", nonce: "n", sign: "s" })).toEqual({
      peer_nodes_list: [NODE],
      additional: { a: "1" },
      wallet: "w",
      nonce: "n",
      sign: "s",
    });
    const ms = { wallets: ["a", "b"], threshold: 2, signs: [{ wallet: "a", nonce: "n", sign: "s" }] };
    expect(parseDbcRequest({ ...base, multisig_accounts: ms }).multisig_accounts).toEqual(ms);
    expect(parseDbcRequest({ ...base, session_id: "x", session_id_sign: "y" }).session_id).toBe("x");
    expect(parseDbcRequest({ peer_nodes_list: [], additional: {} }).peer_nodes_list).toEqual([]);
    // The schema (what routes validate with) accepts the same bodies, and refuses an over-long nonce too.
    expect(Value.Check(DbcRequest, { ...base, multisig_accounts: ms })).toBe(true);
    expect(Value.Check(DbcRequest, { ...base, nonce: "n".repeat(129) })).toBe(false);
  });

  it("refuses malformed bodies with DBC's texts, -25, HTTP 400", () => {
    const base = { peer_nodes_list: [NODE], additional: {} };
    const cases: [unknown, string][] = [
      [null, "invalid json"],
      [[], "invalid json"],
      ["x", "invalid json"],
      [{ additional: {} }, "has no peer_nodes_list"],
      [{ peer_nodes_list: NODE, additional: {} }, "peer_nodes_list is not array"],
      [{ peer_nodes_list: [1], additional: {} }, "peer_nodes_list[0] is not string"],
      [{ peer_nodes_list: [NODE] }, "has no additional"],
      [{ ...base, additional: [] }, "additional is not object"],
      [{ ...base, additional: "{}" }, "additional is not object"],
      [{ ...base, wallet: 5 }, "wallet is not string"],
      [{ ...base, nonce: null }, "nonce is not string"],
      [{ ...base, nonce: "n".repeat(129) }, "nonce is too long (at most 128 characters)"],
      [{ ...base, session_id_sign: {} }, "session_id_sign is not string"],
      [{ ...base, multisig_accounts: [] }, "multisig_accounts is not object"],
      [{ ...base, multisig_accounts: {} }, "multisig_accounts has no member wallets"],
      [{ ...base, multisig_accounts: { wallets: "a" } }, "multisig_accounts member wallets is not array"],
      [{ ...base, multisig_accounts: { wallets: ["a"] } }, "multisig_accounts has no member threshold"],
      [{ ...base, multisig_accounts: { wallets: ["a"], threshold: 1.5 } }, "multisig_accounts member threshold is not string"],
      [{ ...base, multisig_accounts: { wallets: ["a"], threshold: "1" } }, "multisig_accounts has no member signs"],
      [{ ...base, multisig_accounts: { wallets: ["a"], threshold: "1", signs: {} } }, "multisig_accounts member signs is not array"],
      [{ ...base, multisig_accounts: { wallets: ["a"], threshold: "1", signs: [{ wallet: "a", nonce: 1, sign: "s" }] } }, "multisig_accounts member signs[0].nonce is not string"],
    ];
    for (const [body, message] of cases) expect(refusal(body), message).toEqual([400, -25, message]);
  });

  it("refuses an additional nested deeper than 32 levels (a recursion attack on the forward), and only that", () => {
    let deep: unknown = "x";
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(() => parseDbcRequest({ peer_nodes_list: [NODE], additional: { deep } })).toThrow(/additional is nested too deeply/);
    let ok: unknown = "x";
    for (let i = 0; i < 30; i++) ok = { a: ok };
    expect(parseDbcRequest({ peer_nodes_list: [NODE], additional: { ok } }).additional).toEqual({ ok });
  });

  it("names the target node, or says DBC's `peer_nodeid is empty`", () => {
    expect(peerNodeId(parseDbcRequest({ peer_nodes_list: [NODE], additional: {} }))).toBe(NODE);
    expect(() => peerNodeId(parseDbcRequest({ peer_nodes_list: [], additional: {} }))).toThrow("peer_nodeid is empty");
  });
});

describe("envelope", () => {
  it("wraps payloads and errors as DBC does", () => {
    expect(ok({ session_id: "x" })).toEqual({ errcode: 0, message: { session_id: "x" } });
    expect(errorEnvelope(DbcError.authority("machine is not be rented"))).toEqual({
      httpStatus: 200,
      body: { errcode: -3, message: "check authority failed: machine is not be rented" },
    });
    expect(errorEnvelope(new DbcError(-32601, "not support uri:/api/v1/x"))).toEqual({ httpStatus: 404, body: { errcode: -32601, message: "not support uri:/api/v1/x" } });
    expect(errorEnvelope(new Error("secret path /x"))).toEqual({ httpStatus: 500, body: { errcode: -1, message: "internal error" } });
    expect(new DbcError(-3, "task_id not exist", 200).httpStatus).toBe(200);
  });

  it("docs/renter-auth.md lists every errcode with its HTTP status", () => {
    const doc = readFileSync(resolve(import.meta.dirname, "../../../docs/renter-auth.md"), "utf8");
    for (const [name, e] of Object.entries(DbcErrors)) {
      expect(doc, name).toMatch(new RegExp(`\\| \`${e.errcode}\` \\| ${e.httpStatus} \\| \`${e.dbc}\` \\|`));
    }
  });
});
