/**
 * DBC's reply envelope `{"errcode": <int>, "message": <payload or reason>}` and its error catalogue
 * (reference §3: errcodes from DBC's `common/error.h`, HTTP statuses as DBC's client node writes
 * them). Services throw `DbcError`; the `/api/v1` edge turns it into the envelope in one place.
 * docs/renter-auth.md lists the catalogue; a test checks the two agree.
 */
import { Type, type Static, type TSchema } from "@sinclair/typebox";

/**
 * Each code: DBC's errcode, the HTTP status DBC answers it with, DBC's constant name, and when.
 * Node-side refusals (-3, 1) are HTTP 200 in DBC (the client node forwards the node's answer as is);
 * kept so, because DBC clients read `errcode` and may treat other statuses as transport failures.
 */
export const DbcErrors = {
  ok: { errcode: 0, httpStatus: 200, dbc: "ERR_SUCCESS", when: "success; the payload is in `message`" },
  failed: {
    errcode: 1,
    httpStatus: 200,
    dbc: "ERR_ERROR",
    when: "the node refused or failed an operation (`task is running`, a `tasks/start` field that is invalid)",
  },
  denied: {
    errcode: -3,
    httpStatus: 200,
    dbc: "E_DEFAULT",
    when: "`check authority failed: <reason>`; also `task_id not exist` and `no session id`",
  },
  bad_params: {
    errcode: -25,
    httpStatus: 400,
    dbc: "RPC_INVALID_PARAMS",
    when: "body not JSON or not an object, `peer_nodes_list`/`additional`/identity fields missing or mistyped, `peer_nodeid is empty`, `wallet_sign and multisig_wallets all invalid`",
  },
  bad_request: {
    errcode: -32600,
    httpStatus: 400,
    dbc: "RPC_INVALID_REQUEST",
    when: "`only support POST request`, `invalid requests uri`",
  },
  unknown_path: { errcode: -32601, httpStatus: 404, dbc: "RPC_METHOD_NOT_FOUND", when: "`not support uri:<uri>`" },
  node_unreachable: {
    errcode: -32701,
    httpStatus: 400,
    dbc: "RPC_RESPONSE_ERROR",
    when:
      "`create node request failed`: `peer_nodes_list[0]` is no node this agent can reach, or a group member that is dead " +
      "or did not answer in time (routed through the master); the message names the node",
  },
  internal: {
    errcode: -1,
    httpStatus: 500,
    dbc: "RPC_MISC_ERROR",
    when: "`<op> timeout`, or a bug (logged; the reply says only `internal error`)",
  },
} as const;

/** An errcode of the catalogue. */
export type DbcErrcode = (typeof DbcErrors)[keyof typeof DbcErrors]["errcode"];

/** The HTTP status DBC answers an errcode with (the catalogue's first entry for it). */
export function dbcHttpStatus(errcode: DbcErrcode): number {
  return Object.values(DbcErrors).find((e) => e.errcode === errcode)?.httpStatus ?? 500;
}

/** Prefix of every authorization refusal, as DBC's node writes it. */
export const AUTHORITY_FAILED = "check authority failed";

/**
 * A refusal in DBC's terms: thrown by services, turned into `{errcode, message}` + HTTP status at the
 * edge. `httpStatus` defaults to the catalogue's for the errcode.
 */
export class DbcError extends Error {
  readonly httpStatus: number;
  constructor(
    readonly errcode: Exclude<DbcErrcode, 0>,
    message: string,
    httpStatus?: number,
  ) {
    super(message);
    this.name = "DbcError";
    this.httpStatus = httpStatus ?? dbcHttpStatus(errcode);
  }

  /** `-25` (HTTP 400) with DBC's text, e.g. `has no peer_nodes_list`. */
  static badParams(message: string): DbcError {
    return new DbcError(DbcErrors.bad_params.errcode, message);
  }

  /**
   * `-3` `check authority failed: <reason>`, DBC's text, with batu's `: <detail>` after it where DBC
   * only logs the cause (`check authority failed: nonce check failed: nonce is already exist`).
   */
  static authority(reason: string, detail?: string): DbcError {
    return new DbcError(DbcErrors.denied.errcode, `${AUTHORITY_FAILED}: ${reason}${detail ? `: ${detail}` : ""}`);
  }

  toEnvelope(): DbcEnvelope {
    return { errcode: this.errcode, message: this.message };
  }
}

/** Any reply of `/api/v1`. */
export const DbcEnvelope = Type.Object(
  {
    errcode: Type.Integer({ description: "0 on success; DBC's error code otherwise", examples: [0, -3] }),
    message: Type.Unknown({ description: "The payload on success; the reason otherwise" }),
  },
  { $id: "DbcEnvelope" },
);
export type DbcEnvelope = Static<typeof DbcEnvelope>;

/** A failure reply: the reason is a string. */
export const DbcErrorReply = Type.Object(
  {
    errcode: Type.Integer({ description: "DBC's error code", examples: [-3, -25] }),
    message: Type.String({ description: "Why", examples: ["check authority failed: machine is not be rented"] }),
  },
  { $id: "DbcErrorReply" },
);
export type DbcErrorReply = Static<typeof DbcErrorReply>;

/** The success reply schema around a payload schema. */
export function DbcOk<T extends TSchema>(payload: T, description?: string) {
  return Type.Object({ errcode: Type.Literal(0), message: payload }, description ? { description } : {});
}

/** `{"errcode": 0, "message": payload}`. */
export function ok<T>(payload: T): { errcode: 0; message: T } {
  return { errcode: 0, message: payload };
}

/** The envelope and HTTP status for any thrown value: a DbcError as it says; anything else is `internal`. */
export function errorEnvelope(error: unknown): { httpStatus: number; body: DbcEnvelope } {
  if (error instanceof DbcError) return { httpStatus: error.httpStatus, body: error.toEnvelope() };
  return { httpStatus: DbcErrors.internal.httpStatus, body: { errcode: DbcErrors.internal.errcode, message: "internal error" } };
}
