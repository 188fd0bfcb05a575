/** `POST /master/group/session`: a member agrees a session key with its master (group/session-keys.ts). */
import { Type, type Static } from "@sinclair/typebox";
import { NodeId } from "./common.js";

export const GroupSession = Type.Object(
  {
    node_id: NodeId,
    member_key: Type.String({ pattern: "^[0-9a-f]{64}$", description: "The member's fresh X25519 public key, hex" }),
    sent_at: Type.Integer({ minimum: 0, description: "The member's clock, ms since the epoch" }),
    signature: Type.String({ pattern: "^0x[0-9a-f]{128}$", description: "sr25519 signature by the member's node key over the tag, node_id, member_key and sent_at" }),
  },
  { additionalProperties: false, $id: "GroupSession" },
);
export type GroupSession = Static<typeof GroupSession>;

export const GroupSessionReply = Type.Object(
  {
    message: Type.Literal("ok"),
    key_id: Type.String({ pattern: "^[0-9a-f]{16}$" }),
    master_key: Type.String({ pattern: "^[0-9a-f]{64}$", description: "The master's fresh X25519 public key, hex" }),
    ttl_s: Type.Integer({ minimum: 1, description: "Seconds the key proves messages; the member renews it before" }),
    signature: Type.String({ pattern: "^0x[0-9a-f]{128}$", description: "sr25519 signature by the master's node key over the tag, node_id, both keys, key_id and ttl_s" }),
  },
  { $id: "GroupSessionReply" },
);
export type GroupSessionReply = Static<typeof GroupSessionReply>;
