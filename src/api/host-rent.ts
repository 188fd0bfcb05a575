/**
 * The operator's rental ledger on the host API (admin token): `/common/rent/grant`, `/common/rent/list`,
 * `/common/rent/revoke`. The ledger stands in for DBC's chain: a node is `rented` to a renter (a
 * wallet, or a multisig set) while a grant is active.
 */
import { Type, type Static } from "@sinclair/typebox";
import { NodeId, StringEnum } from "./common.js";

const Wallet = Type.String({
  minLength: 1,
  maxLength: 128,
  description: "SS58 address (any network prefix) or 64-hex public key",
  examples: ["5Dy8ULx1De6u3WE9ixpy1VKK2CVssvsjQT15qcmQsG662Zj4"],
});

export const RentMultisig = Type.Object(
  {
    wallets: Type.Array(Wallet, { minItems: 2, maxItems: 100, description: "The multisig set" }),
    threshold: Type.Union([Type.Integer({ minimum: 1, maximum: 100 }), Type.String({ pattern: "^[1-9][0-9]{0,2}$" })], {
      description: "Signatures needed, 1..number of wallets (a string as in DBC, or a number)",
      examples: [2],
    }),
  },
  { additionalProperties: false, description: "A multisig renter: its account is derived from the set and threshold" },
);
export type RentMultisig = Static<typeof RentMultisig>;

const IsoTime = (description: string) =>
  Type.String({
    pattern: "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,9})?)?(Z|[+-]\\d{2}:?\\d{2})$",
    description,
    examples: ["2026-07-01T00:00:00Z"],
  });

/** `POST /common/rent/grant`: rent `node_id` to a wallet or a multisig set until `until`. */
export const RentGrant = Type.Object(
  {
    node_id: NodeId,
    wallet: Type.Optional(Wallet),
    multisig_accounts: Type.Optional(RentMultisig),
    until: IsoTime("End of the rental: ISO 8601 with a time zone (`Z` or `+02:00`), in the future"),
    gpus: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 4096,
        description: "Rent this many of the node's GPUs (several renters share the node; batu picks which at each start). Absent: the whole node, to this renter alone",
      }),
    ),
    cpu_cores: Type.Optional(Type.Integer({ minimum: 1, maximum: 65536, description: "The most vCPUs the renter's VMs on the node may hold in all" })),
    mem_gib: Type.Optional(Type.Integer({ minimum: 1, maximum: 1048576, description: "The most memory (GiB) the renter's VMs on the node may hold in all" })),
    disk_gib: Type.Optional(Type.Integer({ minimum: 1, maximum: 1048576, description: "The most disk (GiB) the renter's VMs on the node may be promised in all" })),
    disk_iops: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000, description: "Each of the renter's VMs: its disks' reads and writes per second, all disks together (default: the node's vm_disk_iops)" })),
    disk_mbps: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, description: "Each of the renter's VMs: its disks' MB/s read and written, all disks together (default: the node's vm_disk_mbps)" })),
    net_mbit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, description: "Each of the renter's VMs: its network's Mbit/s each way (default: the node's vm_net_mbit)" })),
  },
  { additionalProperties: false, $id: "RentGrant" },
);
export type RentGrant = Static<typeof RentGrant>;

export const RentalState = StringEnum(["active", "expired", "revoked"] as const, {
  description: "active until `until` unless revoked",
});

/** One grant of the ledger. */
export const RentalItem = Type.Object(
  {
    id: Type.Integer({ description: "The rental's id (for revoke)", examples: [1] }),
    node_id: Type.String({ description: "The rented node" }),
    renter: Type.String({
      description: "The renter id that owns its tasks: the wallet's SS58 address (prefix 42), or the multisig account's",
    }),
    wallet: Type.Optional(Type.String({ description: "The renter wallet (SS58, prefix 42)" })),
    multisig_accounts: Type.Optional(
      Type.Object({ wallets: Type.Array(Type.String()), threshold: Type.Integer() }, { description: "The multisig renter" }),
    ),
    granted_at: Type.String({ description: "ISO 8601" }),
    until: Type.String({ description: "ISO 8601" }),
    revoked_at: Type.Union([Type.String(), Type.Null()], { description: "ISO 8601, or null" }),
    state: RentalState,
    gpus: Type.Union([Type.Integer(), Type.Null()], { description: "GPUs rented; null: the whole node" }),
    cpu_cores: Type.Union([Type.Integer(), Type.Null()], { description: "vCPU cap of the renter's VMs on the node; null: none" }),
    mem_gib: Type.Union([Type.Integer(), Type.Null()], { description: "Memory cap (GiB); null: none" }),
    disk_gib: Type.Union([Type.Integer(), Type.Null()], { description: "Disk cap (GiB); null: none" }),
    disk_iops: Type.Union([Type.Integer(), Type.Null()], { description: "Each VM's disk IOPS cap; null: the node's default" }),
    disk_mbps: Type.Union([Type.Integer(), Type.Null()], { description: "Each VM's disk MB/s cap; null: the node's default" }),
    net_mbit: Type.Union([Type.Integer(), Type.Null()], { description: "Each VM's network Mbit/s cap, each way; null: the node's default" }),
  },
  { $id: "RentalItem" },
);
export type RentalItem = Static<typeof RentalItem>;

export const RentGrantReply = Type.Object({ message: Type.Literal("ok"), rental: RentalItem }, { $id: "RentGrantReply" });
export type RentGrantReply = Static<typeof RentGrantReply>;

/** `GET /common/rent/list` query: both filters optional. */
export const RentListQuery = Type.Object(
  {
    node_id: Type.Optional(NodeId),
    state: Type.Optional(RentalState),
  },
  { additionalProperties: false },
);
export type RentListQuery = Static<typeof RentListQuery>;

export const RentList = Type.Object({ rentals: Type.Array(RentalItem) }, { $id: "RentList" });
export type RentList = Static<typeof RentList>;

/** `POST /common/rent/revoke`: `{"id"}`, or `{"node_id"}` with `wallet` or `multisig_accounts`. */
export const RentRevoke = Type.Object(
  {
    id: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.String({ pattern: "^[1-9][0-9]{0,15}$" })], { description: "The rental's id" })),
    node_id: Type.Optional(NodeId),
    wallet: Type.Optional(Wallet),
    multisig_accounts: Type.Optional(RentMultisig),
  },
  { additionalProperties: false, $id: "RentRevoke" },
);
export type RentRevoke = Static<typeof RentRevoke>;
