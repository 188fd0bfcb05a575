/**
 * The host API of seed 000: bodies and replies of `/common/...`, `/master/...`, `/slave/...`.
 * Pure schemas, no I/O: imported by the server, the SDK and the CLI.
 */
import { Type, type Static } from "@sinclair/typebox";
import { HostAddress, NodeId, StringEnum } from "./common.js";
import { LanMemberReport, LanViewReply } from "./host-lan.js";
import { GroupHaConfig } from "./host-ha.js";
import { SignedRentalTerms } from "./host-rental-terms.js";

/** The port an agent serves TLS on (the host API, agent-to-agent calls, the renter API too). */
export const TlsPort = Type.Integer({ minimum: 1, maximum: 65535, description: "The agent's HTTPS port", examples: [10443] });
/** A TLS certificate's SHA-256 (of its DER bytes): how agents pin each other's self-signed certificates. */
const certSha256 = (description: string) =>
  Type.String({ pattern: "^[0-9a-f]{64}$", description, examples: ["3b6c0e5f9a1d4c2b8e7f6a5d4c3b2a1908f7e6d5c4b3a29180f7e6d5c4b3a291"] });
export const CertSha256 = certSha256("SHA-256 of the agent's TLS certificate (DER), 64 lower-case hex characters");

/** `conf/config.json`: what this batu system is. Unknown keys are kept (the original had `discript`). */
export const SystemConfig = Type.Object(
  {
    nickname: Type.String({ maxLength: 64, description: "Human name of this host", examples: ["gpu-box-1"] }),
    batu: Type.Boolean({ description: "Marks this as a batu host (always true)", examples: [true] }),
    cors_origins: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 256 }), {
        maxItems: 64,
        description: "Origins whose browser pages may call this agent (CORS), e.g. a web GUI's; every call still needs its token",
      }),
    ),
    allow_drop_caches: Type.Optional(
      Type.Boolean({ description: "Whether renters' free_memory may drop this host's page cache (default false: answered, nothing done)" }),
    ),
    rental_retention_days: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 3650,
        description:
          "How long a renter's VMs are kept, shut down, after its rental of the node ends (default 10, as DBC); " +
          "then they are deleted. Its renters' used nonces are kept as long. Fractions allowed",
      }),
    ),
    image_servers: Type.Optional(
      Type.Array(Type.String({ minLength: 3, maxLength: 300 }), {
        maxItems: 64,
        description:
          "The image servers this node pulls from and pushes to, as DBC's client conf names them: `<id>,<ip>,<port>,<module>`. " +
          "A module that is a path (`/image-server/v1`) is a batu agent's image server; a bare name (`images`) an rsync " +
          "daemon's module (DBC's image servers). A group member also knows its master as `master`",
        examples: [["ID_1,192.168.1.5,10000,/image-server/v1", "DBC_1,192.168.1.9,873,images"]],
      }),
    ),
    image_server: Type.Optional(
      Type.Boolean({ description: "Whether this agent serves its image cache to the LAN as an image server (default: on a master only; `--image-server` turns it on)" }),
    ),
    image_cache_min_free_gib: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 1_000_000,
        description:
          "When the image cache's disk has less free space than this (GiB; default 10), images no task uses, no snapshot " +
          "needs and no renter owns, not pulled for image_cache_keep_days, are removed, oldest first, until it has",
      }),
    ),
    image_cache_keep_days: Type.Optional(Type.Number({ minimum: 0, maximum: 3650, description: "An image pulled more recently than this is never removed to make room (default 7)" })),
    network: Type.Optional(
      Type.Union([Type.Literal("auto"), Type.Literal("bridge"), Type.Literal("user")], {
        description:
          "How VMs are connected (read at agent start; `--network` overrides): `bridge`, a NAT network on a bridge of this host " +
          "(dnsmasq, nftables: security groups, public IPs); `user`, QEMU's user-mode networking; `auto` (default), bridge where " +
          "the agent runs as root with ip, nft and dnsmasq, else user",
      }),
    ),
    nat_cidr: Type.Optional(Type.String({ pattern: "^\\d+\\.\\d+\\.\\d+\\.\\d+/\\d{1,2}$", description: "The NAT network's subnet (default 10.123.0.0/24; its first address is the bridge's)" })),
    nat_bridge: Type.Optional(Type.String({ pattern: "^[A-Za-z0-9_.-]{1,15}$", description: "The NAT network's bridge (default batubr0)" })),
    gpu_release_to_host: Type.Optional(
      Type.Boolean({ description: "Give a VM's GPUs back to the host's driver (nvidia, amdgpu) when it stops; default false: they stay on vfio-pci for the next VM" }),
    ),
    lan_unused_days: Type.Optional(
      Type.Number({ minimum: 0, maximum: 3650, description: "On the master: a LAN network without tasks for this long is removed (default 3, as DBC)" }),
    ),
    public_ips: Type.Optional(
      Type.Array(Type.String({ pattern: "^(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}$" }), {
        maxItems: 1024,
        description: "Addresses of the LAN this node may give VMs as their public_ip (1:1 NAT; added to the uplink while in use). Default none",
      }),
    ),
    vm_disk_iops: Type.Optional(
      Type.Union([Type.Integer({ minimum: 1, maximum: 10_000_000 }), Type.Null()], {
        description: "Each VM's disk reads and writes per second, its disks together, unless its renter's grant says otherwise (read at each boot). Absent or null: no cap",
      }),
    ),
    vm_disk_mbps: Type.Optional(
      Type.Union([Type.Integer({ minimum: 1, maximum: 1_000_000 }), Type.Null()], {
        description: "Each VM's disk MB/s (10^6 bytes) read and written, its disks together, unless its renter's grant says otherwise. Absent or null: no cap",
      }),
    ),
    vm_net_mbit: Type.Optional(
      Type.Union([Type.Integer({ minimum: 1, maximum: 1_000_000 }), Type.Null()], {
        description: "Each VM's network Mbit/s each way (bridged networking: on its taps), unless its renter's grant says otherwise. Absent or null: no cap",
      }),
    ),
    group_ha: Type.Optional(GroupHaConfig),
    renter_disk_quota_gib: Type.Optional(
      Type.Union([Type.Number({ minimum: 0, maximum: 1_000_000 }), Type.Null()], {
        description:
          "The most disk one renter's VMs may be promised in all on this node, in GiB (system and data disks at their full " +
          "size; snapshots not counted). A task, disk or grow beyond it is refused. Absent or null (default): no quota",
      }),
    ),
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

/**
 * A member's proof of holding the join token without sending it (src/group/join-proof.ts): an
 * HMAC-SHA256, keyed by the token, of this master's node id and the body's node_id, address and
 * nickname, at a time and with a nonce used once.
 */
export const JoinProof = Type.Object(
  {
    at: Type.Integer({ minimum: 0, description: "The member's clock, ms since the epoch" }),
    nonce: Type.String({ pattern: "^[0-9a-f]{32}$", description: "16 random bytes, hex, used once" }),
    mac: Type.String({ pattern: "^[0-9a-f]{64}$", description: "HMAC-SHA256, hex" }),
  },
  { additionalProperties: false },
);
export type JoinProof = Static<typeof JoinProof>;

/**
 * `POST /master/group/json` (= `/master/group/join`): a member asks the master to record it,
 * authenticated by `Authorization: Bearer <join token>` (seed 000) or by `proof` (batu's members).
 */
export const GroupJoin = Type.Object(
  {
    address: Type.Optional(HostAddress),
    node_id: Type.Optional(NodeId),
    nickname: Type.Optional(Type.String({ maxLength: 64, description: "The member's nickname" })),
    proof: Type.Optional(JoinProof),
    key_proof: Type.Optional(
      Type.String({
        pattern: "^0x[0-9a-f]{128}$",
        description: "With proof: the member's node key (sr25519) signature over the same claim, proving it holds the key of node_id",
      }),
    ),
    tls_port: Type.Optional(TlsPort),
    cert_sha256: Type.Optional(
      certSha256("With proof: the member's TLS certificate, covered by both proofs: the master pins it"),
    ),
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

/** What a member reports about itself in each heartbeat. */
export const MemberCapacity = Type.Object(
  {
    cpu_threads: Type.Integer({ minimum: 0, description: "Logical CPUs of the host", examples: [16] }),
    memory_total_bytes: Type.Integer({ minimum: 0, description: "Host memory", examples: [68719476736] }),
    memory_available_bytes: Type.Integer({ minimum: 0, description: "Memory available now (MemAvailable)", examples: [51539607552] }),
    disk_total_bytes: Type.Integer({ minimum: 0, description: "Size of the file system holding the data dir" }),
    disk_free_bytes: Type.Integer({ minimum: 0, description: "Free space of that file system" }),
    gpu_total: Type.Integer({ minimum: 0, description: "GPUs of the host (PCI display and 3D controllers)", examples: [4] }),
    gpu_free: Type.Integer({ minimum: 0, description: "GPUs not held by a VM that is not shut off", examples: [2] }),
    vm_count: Type.Integer({ minimum: 0, description: "VMs the member holds (any state)", examples: [2] }),
    version: Type.String({ maxLength: 64, description: "The member's batu version", examples: ["0.1.0"] }),
  },
  { additionalProperties: false },
);
export type MemberCapacity = Static<typeof MemberCapacity>;

export const GroupMember = Type.Object({
  address: Type.String({ description: "The member's agent address, ip:port", examples: ["192.168.1.3:10000"] }),
  node_id: Type.Union([Type.String(), Type.Null()], { description: "The member's node id, when it sent one" }),
  nickname: Type.String(),
  state: MemberState,
  joined_at: Type.String({ description: "ISO 8601 time of the first join" }),
  last_seen: Type.String({ description: "ISO 8601 time of the last join or heartbeat" }),
  capacity: Type.Union([MemberCapacity, Type.Null()], { description: "The last heartbeat's capacity; null before the first" }),
  tls_port: Type.Union([TlsPort, Type.Null()], { description: "Where the master calls the member (HTTPS); null until it told" }),
  cert_sha256: Type.Union([CertSha256, Type.Null()], {
    description: "The member's TLS certificate as the master pins it (from its join or signed heartbeats); null until it told",
  }),
  heartbeat_proof: Type.Optional(
    StringEnum(["session key", "node key"] as const, {
      description: "How its last heartbeat since this master started was proven: an HMAC with a session key, or its node key's signature (a member of the first protocol)",
    }),
  ),
});
export type GroupMember = Static<typeof GroupMember>;

/**
 * `GET /master/group/list`: the seed's shape (`member`), members with more fields; the same list as
 * `members` too, the key the original server and its BATU GUI use.
 */
export const GroupList = Type.Object(
  {
    master: Type.String({ description: "The master's own address" }),
    group_name: Type.String(),
    member: Type.Array(GroupMember, { description: "The members (seed 000's key)" }),
    members: Type.Array(GroupMember, { description: "The same members: the original server's key, which its GUI reads" }),
    total: Type.Optional(Type.Integer({ description: "With a filter or a page: how many members match, on every page" })),
    next: Type.Optional(
      Type.Union([HostAddress, Type.Null()], { description: "With `limit`: the `after` that asks for the next page; null on the last" }),
    ),
  },
  { $id: "GroupList" },
);

/** `GET /master/group/list` query: without any, every member (seed 000's list). */
export const GroupListQuery = Type.Object(
  {
    state: Type.Optional(MemberState),
    limit: Type.Optional(Type.String({ pattern: "^([1-9][0-9]{0,2}|1000)$", description: "At most this many members (1 to 1000): a page" })),
    after: Type.Optional(Type.String({ maxLength: 300, description: "The page after the member of this address (`next` of the page before)" })),
  },
  { additionalProperties: false },
);
export type GroupListQuery = Static<typeof GroupListQuery>;
export type GroupList = Static<typeof GroupList>;

/** `GET /slave/group/my/master`. */
export const MyMaster = Type.Object(
  {
    message: Type.Literal("ok"),
    master: Type.String({ description: "The master's address" }),
    reachable: Type.Boolean({ description: "Whether the master accepted this member's last heartbeat" }),
    last_heartbeat: Type.Union([Type.String(), Type.Null()], {
      description: "ISO 8601 time the master last accepted a heartbeat; null when none since this agent started",
    }),
    last_error: Type.Union([Type.String(), Type.Null()], { description: "Why the last heartbeat failed; null when it did not" }),
  },
  { $id: "MyMaster" },
);
export type MyMaster = Static<typeof MyMaster>;

/** `POST /slave/group/join` (batu's addition, admin only): make this host a member of a master's group. */
export const BecomeMember = Type.Object(
  {
    master: Type.Optional(HostAddress),
    discover: Type.Optional(Type.Boolean({ description: "Find the master on the local network (SSDP) instead of naming it" })),
    group_name: Type.Optional(
      Type.String({ minLength: 1, maxLength: 64, pattern: "^[A-Za-z0-9._-]+$", description: "With discover: only this group's master" }),
    ),
    token: Type.String({ minLength: 16, maxLength: 256, description: "The master's group join token (never sent to it)" }),
  },
  { additionalProperties: false, $id: "BecomeMember" },
);
export type BecomeMember = Static<typeof BecomeMember>;

export const BecomeMemberReply = Type.Object(
  { message: Type.Literal("ok"), master: Type.String(), address: Type.String(), group_name: Type.String() },
  { $id: "BecomeMemberReply" },
);
export type BecomeMemberReply = Static<typeof BecomeMemberReply>;

/** `GET /master/group/hello?challenge=`: who this master is, and its proof of holding the join token. */
export const MasterHelloQuery = Type.Object(
  { challenge: Type.String({ pattern: "^[0-9a-f]{32,128}$", description: "The asker's random challenge, hex" }) },
  { additionalProperties: false },
);
export type MasterHelloQuery = Static<typeof MasterHelloQuery>;

export const MasterHello = Type.Object(
  {
    node_id: NodeId,
    group_name: Type.String(),
    proof: Type.String({ description: "HMAC-SHA256 keyed by the join token of node_id, group_name and the challenge (src/group/join-proof.ts)" }),
    tls_port: Type.Optional(TlsPort),
    cert_sha256: Type.Optional(CertSha256),
    tls_signature: Type.Optional(
      Type.String({
        pattern: "^0x[0-9a-f]{128}$",
        description: "The master's node key (sr25519) signature over node_id, the challenge, tls_port and cert_sha256: members pin the certificate by the node id",
      }),
    ),
  },
  { $id: "MasterHello" },
);
export type MasterHello = Static<typeof MasterHello>;

/**
 * `POST /master/group/heartbeat`: a member's periodic report. No token: the member signs
 * `signHeartbeat(...)` (src/group/heartbeat.ts) with its node key, checked against the node id
 * recorded at join; `sent_at` bounds replays.
 */
export const GroupHeartbeat = Type.Object(
  {
    node_id: NodeId,
    address: HostAddress,
    nickname: Type.String({ maxLength: 64 }),
    sent_at: Type.Integer({ minimum: 0, description: "The member's clock, ms since the epoch", examples: [1735689600000] }),
    capacity: MemberCapacity,
    rental_terms_digest: Type.Optional(
      Type.String({
        pattern: "^[0-9a-f]{64}$",
        description: "SHA-256 of the rental terms the member holds: the master sends its terms only when they differ (not signed: a wrong one only asks for them again)",
      }),
    ),
    signature: Type.Optional(
      Type.String({ pattern: "^0x[0-9a-f]{128}$", description: "sr25519 signature of the heartbeat message by the member's node key, hex (or key_id and mac)" }),
    ),
    key_id: Type.Optional(Type.String({ pattern: "^[0-9a-f]{16}$", description: "The session key (POST /master/group/session) the mac is made with" })),
    mac: Type.Optional(Type.String({ pattern: "^[0-9a-f]{64}$", description: "HMAC-SHA256 of the heartbeat message with the session key, hex" })),
    tls_port: Type.Optional(TlsPort),
    cert_sha256: Type.Optional(
      certSha256("The member's TLS certificate, signed with the rest: the master pins it for its calls to the member"),
    ),
    lans: Type.Optional(Type.Array(LanMemberReport, { maxItems: 4096, description: "The member's VMs on LAN networks, signed with the rest" })),
  },
  { additionalProperties: false, $id: "GroupHeartbeat" },
);
export type GroupHeartbeat = Static<typeof GroupHeartbeat>;

/**
 * The master's answer to a heartbeat: ok, and the member's rental terms (when each renter's use of
 * the member ends or ended), signed by the master's node key over the member's node id and the
 * heartbeat's `sent_at`, so an answer never passes for another member's or for a later heartbeat's.
 */
export const GroupHeartbeatReply = Type.Object(
  {
    message: Type.Literal("ok"),
    rental_terms: Type.Optional(SignedRentalTerms),
    next_beat_ms: Type.Optional(
      Type.Integer({
        minimum: 0,
        description: "Wait at least this long before the next heartbeat: the master bounds the heartbeats it takes per second (a larger group beats less often); a member beats at the longer of this and its own period. Absent from masters that do not pace.",
      }),
    ),
    lans: Type.Optional(Type.Array(LanViewReply, { maxItems: 4096, description: "What the member builds for each LAN network it has VMs of" })),
  },
  { $id: "GroupHeartbeatReply" },
);
export type GroupHeartbeatReply = Static<typeof GroupHeartbeatReply>;

/** `POST /master/group/remove` (admin): forget a member, by node id or address. */
export const GroupRemove = Type.Object(
  {
    node_id: Type.Optional(NodeId),
    address: Type.Optional(HostAddress),
  },
  { additionalProperties: false, $id: "GroupRemove" },
);
export type GroupRemove = Static<typeof GroupRemove>;

export const GroupRemoveReply = Type.Object(
  { message: Type.Literal("ok"), address: Type.String(), node_id: Type.Union([Type.String(), Type.Null()]) },
  { $id: "GroupRemoveReply" },
);
export type GroupRemoveReply = Static<typeof GroupRemoveReply>;

/** `POST /common/token/rotate` (admin): replace one of this host's tokens, at once, without a restart. */
export const TokenRotate = Type.Object(
  {
    token: StringEnum(["admin", "join", "metrics"] as const, {
      description: "Which token: the operator's (admin.token), the group's (join.token) or a metrics scraper's (metrics.token: GET /metrics only)",
    }),
  },
  { additionalProperties: false, $id: "TokenRotate" },
);
export type TokenRotate = Static<typeof TokenRotate>;

export const TokenRotateReply = Type.Object(
  {
    message: Type.Literal("ok"),
    token: StringEnum(["admin", "join", "metrics"] as const),
    file: Type.String({ description: "The file that holds the new token (conf/admin.token, conf/join.token or conf/metrics.token)" }),
  },
  { $id: "TokenRotateReply" },
);
export type TokenRotateReply = Static<typeof TokenRotateReply>;
