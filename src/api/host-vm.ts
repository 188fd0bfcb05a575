/**
 * Seed 000's VM endpoints: `/common/vm/add`, `/common/vm/list`, `/common/vm/control`, `/common/vm/stats`.
 */
import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { StringEnum } from "./common.js";

const Count = (description: string, max: number, example: number) =>
  Type.Union([Type.Integer({ minimum: 1, maximum: max }), Type.String({ pattern: "^[1-9][0-9]{0,3}$" })], {
    description,
    examples: [example],
  });
const Size = (description: string, example: string) =>
  Type.Union([Type.Number({ exclusiveMinimum: 0 }), Type.String({ minLength: 1, maxLength: 16 })], {
    description: `${description}: \`512M\`, \`8G\`, \`8GB\`, or a bare number of GB`,
    examples: [example],
  });
const PortNumber = (description: string) =>
  Type.Union([Type.Integer({ minimum: 1, maximum: 65535 }), Type.String({ pattern: "^[0-9]{1,5}$" })], { description });

/** `POST /common/vm/add`: the seed's fields plus batu's optional ones. Also accepted as form field `data` (JSON text). */
export const VmAdd = Type.Object(
  {
    nickname: Type.Optional(Type.String({ maxLength: 64, description: "Human name of the VM", examples: ["web-1"] })),
    cpu_physical_core: Count("CPU cores of the VM", 256, 2),
    cpu_virtual_core: Type.Optional(Count("vCPUs in all (cores × threads); defaults to cpu_physical_core", 512, 2)),
    main_memory: Size("Memory", "1G"),
    disk_memory: Type.Optional(Size("Size of the data disk vdb (the system disk is the image's)", "8G")),
    start_command: Type.Optional(
      Type.String({
        maxLength: 1024,
        description: "The operator's note of how the VM is meant to be used. Kept and listed; never executed.",
      }),
    ),
    image_name: Type.Optional(
      Type.String({ pattern: "^[A-Za-z0-9._-]{1,128}$", description: "Image to boot", default: "batu-demo.qcow2" }),
    ),
    gpu_count: Type.Optional(
      Type.Union([Type.Integer({ minimum: 0, maximum: 64 }), Type.String({ pattern: "^[0-9]{1,2}$" })], {
        description: "GPUs to pass through",
      }),
    ),
    ssh_port: Type.Optional(PortNumber("Host port forwarded to the guest's port 22; chosen when absent")),
    vnc_port: Type.Optional(PortNumber("Host TCP port of the VM's VNC server, 5900–65535; chosen when absent")),
    custom_port: Type.Optional(
      Type.Array(Type.String({ maxLength: 40 }), {
        maxItems: 64,
        description: "Extra forwards in DBC's syntax: `tcp,8080:80`, `udp,111`, `tcp,333-444`, `udp,555-666:777-888`",
        examples: [["tcp,8080:80"]],
      }),
    ),
  },
  { additionalProperties: false, $id: "VmAdd" },
);
export type VmAdd = Static<typeof VmAdd>;

export const VmAddReply = Type.Object(
  { message: Type.Literal("ok"), id: Type.String({ description: "The new VM's id" }) },
  { $id: "VmAddReply" },
);

export const VmItem = Type.Object(
  {
    id: Type.String(),
    nickname: Type.String(),
    cpu_physical_core: Type.Integer(),
    cpu_virtual_core: Type.Integer(),
    main_memory: Type.String({ description: "e.g. `1G`, `512M`" }),
    disk_memory: Type.String({ description: "Data disk size, `0` for none" }),
    start_command: Type.String(),
    status: Type.String({ description: "DBC's status strings: creating, running, closed, starting, being shutdown, ..." }),
    ready: Type.Boolean({ description: "The guest is up and usable (not just its QEMU process)" }),
    image_name: Type.String(),
    gpu_count: Type.Integer(),
    ssh_port: Type.Union([Type.Integer(), Type.Null()]),
    vnc_port: Type.Integer(),
    custom_port: Type.Array(Type.String()),
    created_at: Type.String(),
    owner: Type.Optional(Type.Union([Type.String(), Type.Null()], { description: "The renter the VM is a task of (null: the operator's)" })),
    rental_ended_at: Type.Optional(
      Type.Union([Type.String(), Type.Null()], {
        description: "When the owner's rental of this node ended: the VM was shut down then and is deleted after the retention (its task log says when)",
      }),
    ),
    node_id: Type.Optional(Type.String({ description: "With scope=group: the node the VM lives on" })),
    node_address: Type.Optional(Type.String({ description: "With scope=group: that node's agent address" })),
  },
  { $id: "VmItem" },
);
export type VmItem = Static<typeof VmItem>;
export const VmList = Type.Array(VmItem, { $id: "VmList" });

export const VmListQuery = Type.Object(
  {
    scope: Type.Optional(
      StringEnum(["host", "group"], { description: "host (default): this host's VMs; group (on a master): every node's" }),
    ),
    node_id: Type.Optional(Type.String({ pattern: "^[0-9a-f]{64}$", description: "With scope=group: only this node's VMs (the master's own or a member's)" })),
    limit: Type.Optional(
      Type.String({ pattern: "^([1-9][0-9]{0,3}|10000)$", description: "With scope=group: at most this many VMs (1 to 10000), a page; the header `x-batu-next` holds the `after` of the next one" }),
    ),
    after: Type.Optional(
      Type.String({
        pattern: "^[0-9a-f]{64}/[A-Za-z0-9_-]{1,64}$",
        description: "With scope=group: the page after this VM, `<node_id>/<vm_id>` (the `x-batu-next` of the page before)",
      }),
    ),
  },
  { additionalProperties: false },
);

export const VmControlAction = StringEnum(["start", "shutdown", "poweroff", "restart", "reset", "delete"], {
  description: "shutdown is graceful (ACPI, then power-off after a timeout); restart with force=true is a reset",
});

/** `POST /common/vm/control`: a structured action, never a shell command. */
export const VmControl = Type.Object(
  {
    vm_id: Type.String({ pattern: "^[A-Za-z0-9_-]{1,64}$" }),
    action: VmControlAction,
    force: Type.Optional(Type.Boolean({ description: "restart: reset at once instead of a graceful restart" })),
  },
  { additionalProperties: false, $id: "VmControl" },
);
export type VmControl = Static<typeof VmControl>;

export const VmStatsQuery = Type.Object(
  { vm_id: Type.String({ pattern: "^[A-Za-z0-9_-]{1,64}$" }) },
  { additionalProperties: false },
);

const VmId = Type.String({ pattern: "^[A-Za-z0-9_-]{1,64}$" });
const DataDiskName = Type.String({ pattern: "^vd[b-z]$", description: "A data disk: vdb … vdz (vda is the system disk)" });

export const VmDiskListQuery = Type.Object({ vm_id: VmId }, { additionalProperties: false });
export const VmDiskList = Type.Object(
  {
    vm_id: Type.String(),
    disks: Type.Array(
      Type.Object({
        name: Type.String(),
        file: Type.String({ description: "The file's name in the VM's folder (or the operator's data file)" }),
        size_bytes: Type.Union([Type.Integer(), Type.Null()], { description: "What the guest sees" }),
      }),
    ),
  },
  { $id: "VmDiskList" },
);

export type VmDiskList = Static<typeof VmDiskList>;

/** `POST /common/vm/disk/add`: a new empty data disk, hot-plugged into a running VM. */
export const VmDiskAdd = Type.Object(
  { vm_id: VmId, size_gib: Type.Integer({ minimum: 1, maximum: 65536, description: "Its size, GiB" }) },
  { additionalProperties: false, $id: "VmDiskAdd" },
);
/** `POST /common/vm/disk/resize`: grows a data disk BY `grow_gib` (as DBC's resize), live on a running VM. */
export const VmDiskResize = Type.Object(
  { vm_id: VmId, disk: DataDiskName, grow_gib: Type.Integer({ minimum: 1, maximum: 65536, description: "How much to add, GiB" }) },
  { additionalProperties: false, $id: "VmDiskResize" },
);
/** `POST /common/vm/disk/delete`: removes a data disk (unplugged first from a running VM). */
export const VmDiskDelete = Type.Object({ vm_id: VmId, disk: DataDiskName }, { additionalProperties: false, $id: "VmDiskDelete" });
export type VmDiskAdd = Static<typeof VmDiskAdd>;
export type VmDiskResize = Static<typeof VmDiskResize>;
export type VmDiskDelete = Static<typeof VmDiskDelete>;

const SnapshotName = Type.String({ pattern: "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$" });
export const VmSnapshotListQuery = Type.Object({ vm_id: VmId }, { additionalProperties: false });
export const VmSnapshotItem = Type.Object({
  name: Type.String(),
  description: Type.String(),
  image_name: Type.String({ description: "The image it is, in the node's image cache (what a new VM boots it by)" }),
  owner: Type.Union([Type.String(), Type.Null()], { description: "The renter whose tasks alone may boot it (null: the operator's)" }),
  status: Type.String({ description: "DBC's: creating, none" }),
  created_at: Type.String(),
  data_disks: Type.Array(Type.Object({ name: Type.String(), size_bytes: Type.Integer() }), { description: "The data disks it holds besides vda" }),
});
export const VmSnapshotList = Type.Object({ vm_id: Type.String(), snapshots: Type.Array(VmSnapshotItem) }, { $id: "VmSnapshotList" });
/** `POST /common/vm/snapshot/create`: a snapshot of the VM's system disk (and data disks on request), live when it runs; answered once it is made. */
export const VmSnapshotCreate = Type.Object(
  {
    vm_id: VmId,
    name: SnapshotName,
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    disks: Type.Optional(Type.Array(DataDiskName, { maxItems: 25, description: "Data disks to hold too (vda always is)" })),
  },
  { additionalProperties: false, $id: "VmSnapshotCreate" },
);
export const VmSnapshotDelete = Type.Object({ vm_id: VmId, name: SnapshotName }, { additionalProperties: false, $id: "VmSnapshotDelete" });
export type VmSnapshotItem = Static<typeof VmSnapshotItem>;
export type VmSnapshotList = Static<typeof VmSnapshotList>;
export type VmSnapshotCreate = Static<typeof VmSnapshotCreate>;
export type VmSnapshotDelete = Static<typeof VmSnapshotDelete>;

export const VmLogQuery = Type.Object(
  {
    vm_id: Type.String({ pattern: "^[A-Za-z0-9_-]{1,64}$" }),
    from: Type.Optional(StringEnum(["head", "tail"], { description: "tail (default): the newest lines; head: the oldest" })),
    // A query string is text (the schema compiler does not coerce types): 1 to 1000 written in digits.
    count: Type.Optional(Type.String({ pattern: "^(1000|[1-9][0-9]{0,2})$", description: "How many lines, 1 to 1000 (default 100)" })),
  },
  { additionalProperties: false },
);
export type VmLogQuery = Static<typeof VmLogQuery>;

export const VmLog = Type.Object(
  {
    vm_id: Type.String(),
    lines: Type.Array(Type.String(), { description: "`<ISO time> <event>`, oldest first" }),
  },
  { $id: "VmLog" },
);
export type VmLog = Static<typeof VmLog>;

export const VmStats = Type.Object(
  {
    vm_id: Type.String(),
    status: Type.String(),
    ready: Type.Boolean(),
    uptime_sec: Type.Union([Type.Number(), Type.Null()]),
    cpu: Type.Object({
      vcpus: Type.Integer(),
      time_ms: Type.Union([Type.Number(), Type.Null()], { description: "vCPU time used since start" }),
      usage_percent: Type.Union([Type.Number(), Type.Null()], {
        description: "vCPU time over wall time since the previous stats call (or since start), 100 = one vCPU busy",
      }),
    }),
    memory: Type.Object({
      configured_bytes: Type.Number(),
      used_bytes: Type.Union([Type.Number(), Type.Null()], { description: "resident memory of the QEMU process" }),
    }),
    disk: Type.Object({
      read_bytes: Type.Union([Type.Number(), Type.Null()]),
      written_bytes: Type.Union([Type.Number(), Type.Null()]),
    }),
    network: Type.Object({
      rx_bytes: Type.Union([Type.Number(), Type.Null()]),
      tx_bytes: Type.Union([Type.Number(), Type.Null()]),
    }),
  },
  { $id: "VmStats" },
);
export type VmStats = Static<typeof VmStats>;

const nullable = <T extends TSchema>(t: T, description: string) => Type.Union([t, Type.Null()], { description });

/** `GET /common/vm/limits`: a VM's caps on disk I/O and network, wanted and enforced. */
export const VmLimits = Type.Object(
  {
    vm_id: Type.String(),
    disk_iops: nullable(Type.Integer(), "Reads and writes per second, all its disks together (its grant's, else config.json vm_disk_iops); null: no cap"),
    disk_mbps: nullable(Type.Number(), "MB/s read and written, all its disks together (grant, else vm_disk_mbps); null: no cap"),
    net_mbit: nullable(Type.Integer(), "Mbit/s each way on each of its taps (grant, else vm_net_mbit); null: no cap"),
    enforced: Type.Object(
      {
        disks: Type.Array(
          Type.Object({
            disk: Type.String(),
            iops: nullable(Type.Integer(), "QEMU's cap now"),
            mbps: nullable(Type.Number(), "QEMU's cap now"),
            group: nullable(Type.String(), "The QEMU throttle group the disk shares its cap in"),
          }),
        ),
        taps: Type.Array(
          Type.Object({
            tap: Type.String(),
            down_mbit: nullable(Type.Number(), "host to guest, shaped (tc tbf)"),
            up_mbit: nullable(Type.Number(), "guest to host, policed (nftables)"),
          }),
        ),
      },
      { description: "Read back from QEMU and the kernel while the VM runs (empty when it does not; no taps in user-mode networking)" },
    ),
  },
  { $id: "VmLimits" },
);
export type VmLimits = Static<typeof VmLimits>;
export const VmVncQuery = Type.Object({ vm_id: VmId }, { additionalProperties: false });

/** `GET /common/vm/vnc`: where the operator reaches a VM's VNC server, and its password. */
export const VmVnc = Type.Object(
  {
    vm_id: Type.String(),
    host: Type.Union([Type.String(), Type.Null()], {
      description: "The address VNC listens on; null when it listens on every address (reach it by the host's own)",
    }),
    port: Type.Integer(),
    password: Type.String({ description: "The VNC password (8 characters: VNC reads no more)" }),
    running: Type.Boolean({ description: "Whether the VM runs: a stopped VM's VNC port answers nothing" }),
  },
  { $id: "VmVnc" },
);
export type VmVnc = Static<typeof VmVnc>;
