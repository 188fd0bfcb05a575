/**
 * The host API of seed 000: bodies and replies of `/common/...`, `/master/...`, `/slave/...`.
 * Pure schemas, no I/O: imported by the server, the SDK and the CLI.
 */
import { Type, type Static } from "@sinclair/typebox";
import { HostAddress, NodeId } from "./common.js";

/** `conf/config.json`: what this batu system is. Unknown keys are kept (the original had `discript`). */
export const SystemConfig = Type.Object(
  {
    nickname: Type.String({ maxLength: 64, description: "Human name of this host", examples: ["gpu-box-1"] }),
    batu: Type.Boolean({ description: "Marks this as a batu host (always true)", examples: [true] }),
  },
  { additionalProperties: true, $id: "SystemConfig" },
);
export type SystemConfig = Static<typeof SystemConfig>;

export const HostType = Type.Union([Type.Literal("master"), Type.Literal("slave"), Type.Literal("none")]);
export type HostType = Static<typeof HostType>;

/** `conf/host_config.json` of a master. */
export const MasterHostConfig = Type.Object(
  {
    host_type: Type.Literal("master"),
    group_name: Type.String({ minLength: 1, maxLength: 64, pattern: "^[A-Za-z0-9._-]+$" }),
  },
  { additionalProperties: false },
);
/** `conf/host_config.json` of a member ("slave" in seed 000). */
export const SlaveHostConfig = Type.Object(
  {
    host_type: Type.Literal("slave"),
    master: HostAddress,
    have_group: Type.Boolean(),
    group_name: Type.Optional(Type.String({ maxLength: 64 })),
    /** The master's node id, learnt when joining: later calls from the master are checked against it. */
    master_node_id: Type.Optional(NodeId),
  },
  { additionalProperties: false },
);
/** The original code's default for a host in no group. */
export const UngroupedHostConfig = Type.Object({ host_type: Type.Literal("none") }, { additionalProperties: false });
export const HostConfig = Type.Union([MasterHostConfig, SlaveHostConfig, UngroupedHostConfig]);
export type HostConfig = Static<typeof HostConfig>;
export type MasterHostConfig = Static<typeof MasterHostConfig>;
export type SlaveHostConfig = Static<typeof SlaveHostConfig>;

/** `POST /master/group/json` (= `/master/group/join`): a member asks the master to record it. */
export const GroupJoin = Type.Object(
  {
    address: Type.Optional(HostAddress),
    node_id: Type.Optional(NodeId),
    nickname: Type.Optional(Type.String({ maxLength: 64, description: "The member's nickname" })),
  },
  { additionalProperties: false, $id: "GroupJoin" },
);
export type GroupJoin = Static<typeof GroupJoin>;

export const GroupJoinReply = Type.Object(
  {
    message: Type.Literal("ok"),
    master: Type.String({ description: "The master's address" }),
    group_name: Type.String(),
    node_id: Type.String({ description: "The master's node id" }),
    address: Type.String({ description: "The address recorded for the member" }),
  },
  { $id: "GroupJoinReply" },
);
export type GroupJoinReply = Static<typeof GroupJoinReply>;

export const MemberState = Type.Union([Type.Literal("alive"), Type.Literal("suspect"), Type.Literal("dead")]);

export const GroupMember = Type.Object({
  address: Type.String({ description: "The member's agent address, ip:port", examples: ["192.168.1.3:10000"] }),
  node_id: Type.Union([Type.String(), Type.Null()], { description: "The member's node id, when it sent one" }),
  nickname: Type.String(),
  state: MemberState,
  joined_at: Type.String({ description: "ISO 8601 time of the first join" }),
  last_seen: Type.String({ description: "ISO 8601 time of the last join or heartbeat" }),
});
export type GroupMember = Static<typeof GroupMember>;

/** `GET /master/group/list`: the seed's shape, members with more fields. */
export const GroupList = Type.Object(
  {
    master: Type.String({ description: "The master's own address" }),
    group_name: Type.String(),
    member: Type.Array(GroupMember),
  },
  { $id: "GroupList" },
);
export type GroupList = Static<typeof GroupList>;

/** `GET /slave/group/my/master`. */
export const MyMaster = Type.Object(
  { message: Type.Literal("ok"), master: Type.String({ description: "The master's address" }) },
  { $id: "MyMaster" },
);
export type MyMaster = Static<typeof MyMaster>;

/** `POST /slave/group/join` (batu's addition, admin only): make this host a member of a master's group. */
export const BecomeMember = Type.Object(
  {
    master: HostAddress,
    token: Type.String({ minLength: 16, maxLength: 256, description: "The master's group join token" }),
  },
  { additionalProperties: false, $id: "BecomeMember" },
);
export type BecomeMember = Static<typeof BecomeMember>;

export const BecomeMemberReply = Type.Object(
  { message: Type.Literal("ok"), master: Type.String(), address: Type.String(), group_name: Type.String() },
  { $id: "BecomeMemberReply" },
);
export type BecomeMemberReply = Static<typeof BecomeMemberReply>;
