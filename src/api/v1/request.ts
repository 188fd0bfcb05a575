/**
 * The common body of every `POST /api/v1/...` (reference §2.1): `peer_nodes_list`, `additional`, and
 * one identity: `wallet`+`nonce`+`sign`, `multisig_accounts`, or `session_id`+`session_id_sign`.
 * The TypeBox schema documents it; `parseDbcRequest` checks it with DBC's own texts and order
 * (`rest_api_service.cpp::parse_req_params`), which a schema validator cannot reproduce.
 */
import { Type, type Static } from "@sinclair/typebox";
import { DbcError } from "./envelope.js";

/** Longest nonce accepted, in characters. DBC's own are 55; the cap bounds what each request stores forever. */
export const MAX_NONCE_LENGTH = 128;
/** Most entries of `multisig_accounts.wallets` and `.signs` read. */
const MAX_LIST = 100;
/** Longest identity string read (addresses, signatures, nonces, session ids are far shorter). */
const MAX_FIELD = 256;

const Wallet = Type.String({
  maxLength: MAX_FIELD,
  description: "SS58 address (any network prefix) or 64-hex public key",
  examples: ["5Dy8ULx1De6u3WE9ixpy1VKK2CVssvsjQT15qcmQsG662Zj4"],
});
const Sign = Type.String({ maxLength: MAX_FIELD, description: "sr25519 (or ed25519) signature as 128 hex characters, `0x` optional" });
const Nonce = Type.String({ maxLength: MAX_NONCE_LENGTH, description: "Any string, used once per wallet, at most 128 characters" });

export const DbcSignItem = Type.Object({ wallet: Wallet, nonce: Nonce, sign: Sign });
export type DbcSignItem = Static<typeof DbcSignItem>;

export const DbcMultisigAccounts = Type.Object(
  {
    wallets: Type.Array(Wallet, { maxItems: MAX_LIST, description: "The multisig set" }),
    threshold: Type.Union([Type.String(), Type.Integer()], {
      description: "Signatures needed; a string in DBC (`\"2\"`), a number accepted too",
      examples: ["2"],
    }),
    signs: Type.Array(DbcSignItem, { maxItems: MAX_LIST, description: "Each signer's signature of its own nonce" }),
  },
  { description: "Multisig identity: at least `threshold` distinct wallets of the set sign" },
);
export type DbcMultisigAccounts = Static<typeof DbcMultisigAccounts>;

/** The body of every `/api/v1` request. Unknown top-level fields are ignored, as DBC does. */
export const DbcRequest = Type.Object(
  {
    peer_nodes_list: Type.Array(Type.String(), {
      description: "The target node's id first (only element 0 is used); empty for `mining_nodes` of all nodes",
      examples: [["460e56d4cdade97065ddf4d0dfeee7ab7e6e77d0058fad07e43123fadd1d8d2a"]],
    }),
    additional: Type.Record(Type.String(), Type.Unknown(), { description: "The operation's own fields" }),
    wallet: Type.Optional(Wallet),
    nonce: Type.Optional(Nonce),
    sign: Type.Optional(Type.String({ maxLength: MAX_FIELD, description: "The wallet's signature of the nonce's UTF-8 bytes" })),
    multisig_accounts: Type.Optional(DbcMultisigAccounts),
    session_id: Type.Optional(Type.String({ maxLength: MAX_FIELD, description: "A renter's session id (`mining_nodes/session_id`)" })),
    session_id_sign: Type.Optional(Type.String({ maxLength: MAX_FIELD, description: "The renter's signature of the session id" })),
    rent_order: Type.Optional(Type.String({ maxLength: MAX_FIELD, description: "DBC's rent order id; accepted and ignored" })),
  },
  { additionalProperties: true, $id: "DbcRequest" },
);
export type DbcRequest = Static<typeof DbcRequest>;


const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function optionalString(body: Record<string, unknown>, field: string): string | undefined {
  if (!(field in body)) return undefined;
  const v = body[field];
  if (typeof v !== "string") throw DbcError.badParams(`${field} is not string`);
  const max = field === "nonce" ? MAX_NONCE_LENGTH : MAX_FIELD;
  if (v.length > max) throw DbcError.badParams(`${field} is too long (at most ${max} characters)`);
  return v;
}

function parseMultisig(v: unknown): DbcMultisigAccounts {
  if (!isObject(v)) throw DbcError.badParams("multisig_accounts is not object");
  if (!("wallets" in v)) throw DbcError.badParams("multisig_accounts has no member wallets");
  const { wallets } = v;
  if (!Array.isArray(wallets)) throw DbcError.badParams("multisig_accounts member wallets is not array");
  if (wallets.length > MAX_LIST) throw DbcError.badParams(`multisig_accounts member wallets has more than ${MAX_LIST} entries`);
  wallets.forEach((w, i) => {
    if (typeof w !== "string" || w.length > MAX_FIELD) throw DbcError.badParams(`multisig_accounts member wallets[${i}] is not string`);
  });
  if (!("threshold" in v)) throw DbcError.badParams("multisig_accounts has no member threshold");
  const { threshold } = v;
  // DBC insists on a string; a number is accepted too, as the issue asks for `additional`.
  if (typeof threshold !== "string" && !(typeof threshold === "number" && Number.isInteger(threshold))) {
    throw DbcError.badParams("multisig_accounts member threshold is not string");
  }
  if (!("signs" in v)) throw DbcError.badParams("multisig_accounts has no member signs");
  const { signs } = v;
  if (!Array.isArray(signs)) throw DbcError.badParams("multisig_accounts member signs is not array");
  if (signs.length > MAX_LIST) throw DbcError.badParams(`multisig_accounts member signs has more than ${MAX_LIST} entries`);
  const items = signs.map((s, i): DbcSignItem => {
    if (!isObject(s)) throw DbcError.badParams(`multisig_accounts member signs[${i}] is not object`);
    for (const f of ["wallet", "nonce", "sign"] as const) {
      if (typeof s[f] !== "string" || (s[f] as string).length > MAX_FIELD) {
        throw DbcError.badParams(`multisig_accounts member signs[${i}].${f} is not string`);
      }
    }
    if ((s.nonce as string).length > MAX_NONCE_LENGTH) {
      throw DbcError.badParams(`multisig_accounts member signs[${i}].nonce is too long (at most ${MAX_NONCE_LENGTH} characters)`);
    }
    return { wallet: s.wallet as string, nonce: s.nonce as string, sign: s.sign as string };
  });
  return { wallets: wallets as string[], threshold, signs: items };
}

/**
 * Checks a parsed JSON body as DBC's client node does, in its order and with its texts (all `-25`,
 * HTTP 400): `invalid json`, `has no peer_nodes_list`, `peer_nodes_list is not array`, `has no
 * additional`, `additional is not object`, `<field> is not string`, `multisig_accounts ...`. Where DBC
 * would crash (a non-string in a list) it says which entry is wrong instead.
 */
export function parseDbcRequest(body: unknown): DbcRequest {
  if (!isObject(body)) throw DbcError.badParams("invalid json");
  if (!("peer_nodes_list" in body)) throw DbcError.badParams("has no peer_nodes_list");
  const peers = body.peer_nodes_list;
  if (!Array.isArray(peers)) throw DbcError.badParams("peer_nodes_list is not array");
  if (peers.length > 0 && typeof peers[0] !== "string") throw DbcError.badParams("peer_nodes_list[0] is not string");
  if (!("additional" in body)) throw DbcError.badParams("has no additional");
  if (!isObject(body.additional)) throw DbcError.badParams("additional is not object");
  if (deeperThan(body.additional, MAX_ADDITIONAL_DEPTH)) {
    throw DbcError.badParams(`additional is nested too deeply (at most ${MAX_ADDITIONAL_DEPTH} levels)`);
  }
  const req: DbcRequest = {
    peer_nodes_list: peers.length > 0 ? [peers[0] as string] : [],
    additional: body.additional,
  };
  for (const f of ["wallet", "nonce", "sign"] as const) {
    const v = optionalString(body, f);
    if (v !== undefined) req[f] = v;
  }
  if ("multisig_accounts" in body) req.multisig_accounts = parseMultisig(body.multisig_accounts);
  for (const f of ["session_id", "session_id_sign", "rent_order"] as const) {
    const v = optionalString(body, f);
    if (v !== undefined) req[f] = v;
  }
  return req;
}

/** DBC's `additional` values are flat or a list deep; anything this deep is an attack on recursion (serializing it to forward it). */
export const MAX_ADDITIONAL_DEPTH = 32;

/** Whether `value` nests objects or arrays more than `limit` levels deep. Iterative: never recurses itself. */
export function deeperThan(value: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    if (depth > limit) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

/** `peer_nodes_list[0]`, the target node; `-25 peer_nodeid is empty` when there is none. */
export function peerNodeId(req: DbcRequest): string {
  const id = req.peer_nodes_list[0];
  if (!id) throw DbcError.badParams("peer_nodeid is empty");
  return id;
}
