import { Type, type Static, type TUnsafe } from "@sinclair/typebox";

/** The host API's failure body (seed 000): non-200 with a reason. */
export const ErrorReply = Type.Object(
  { message: Type.String({ description: "Why the request failed", examples: ["vm_id: no such VM"] }) },
  { $id: "ErrorReply" },
);
export type ErrorReply = Static<typeof ErrorReply>;

/** The seed's plain success body. */
export const OkReply = Type.Object(
  { message: Type.Literal("ok", { description: "Always \"ok\" on success" }) },
  { $id: "OkReply" },
);
export type OkReply = Static<typeof OkReply>;

/** `ip:port` or a bare IP/hostname (port 10000 implied, as in seed 000). */
export const HostAddress = Type.String({
  minLength: 1,
  maxLength: 261,
  pattern: "^[A-Za-z0-9._\\-\\[\\]:]+$",
  description: "Address of an agent: `ip:port`, or a bare IP where the port is 10000",
  examples: ["192.168.1.44:10000"],
});

/** A node id: the hex public key of the agent's sr25519 key, 64 hex characters (DBC's form). */
export const NodeId = Type.String({
  pattern: "^[0-9a-f]{64}$",
  description: "The node's public key as 64 lower-case hex characters",
  examples: ["8eaf04151687736326c9fea17e25fc5287613693c912909cb226aa4794f26a48"],
});

/** A string that is one of `values`: a JSON-schema enum, so a wrong value is named with the allowed ones. */
export function StringEnum<const T extends readonly string[]>(values: T, opts: { description?: string; default?: T[number] } = {}): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ type: "string", enum: [...values], ...opts });
}
