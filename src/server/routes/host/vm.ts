import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { FastifyRequest } from "fastify";
import { ErrorReply, OkReply } from "../../../api/common.js";
import { ApiError } from "../../../api/errors.js";
import {
  VmAdd,
  VmAddReply,
  VmControl,
  VmDiskAdd,
  VmDiskDelete,
  VmDiskList,
  VmDiskListQuery,
  VmDiskResize,
  VmItem,
  VmList,
  VmListQuery,
  VmLog,
  VmLogQuery,
  VmSnapshotCreate,
  VmSnapshotDelete,
  VmSnapshotList,
  VmSnapshotListQuery,
  VmStats,
  VmLimits,
  VmStatsQuery,
  VmVnc,
  VmVncQuery,
} from "../../../api/host-vm.js";
import type { DiskService } from "../../../disk/service.js";
import type { Snapshot, SnapshotService } from "../../../snapshot/service.js";
import { MEMBER_VMS_PATH, type GroupVms } from "../../../group/group-vms.js";
import { fromHostAdd } from "./vm-add.js";
import type { VmRecord } from "../../../vm/repo.js";
import type { VmService } from "../../../vm/service.js";
import type { VmQueries } from "../../../vm/queries.js";
import { vcpus } from "../../../vm/spec.js";

const CONTROL_USAGE =
  'send {"vm_id":"<id>","action":"start|shutdown|poweroff|restart|reset|delete"}: batu never runs a command from a request';

/**
 * Seed 000's original form: a field `data` holding JSON text (form-encoded or JSON). Unwraps it
 * so the route's schema sees the object inside.
 */
async function unwrapData(req: FastifyRequest): Promise<void> {
  const body = req.body as Record<string, unknown> | string | undefined;
  if (typeof body !== "object" || body === null || Array.isArray(body)) return;
  const keys = Object.keys(body);
  if (keys.length !== 1 || keys[0] !== "data") return;
  if (typeof body.data === "object" && body.data !== null) {
    req.body = body.data;
    return;
  }
  if (typeof body.data !== "string") throw new ApiError("bad_request", "data: must be JSON text or an object");
  try {
    req.body = JSON.parse(body.data);
  } catch {
    throw new ApiError("bad_request", "data: is not JSON");
  }
}

/** A VM record as the host API lists it (also each change of `/common/vm/events`). */
export function toItem(vm: VmRecord): VmItem {
  const { spec } = vm;
  return {
    id: vm.id,
    nickname: vm.nickname,
    cpu_physical_core: spec.cpu.cores,
    cpu_virtual_core: vcpus(spec),
    main_memory: spec.memoryMiB % 1024 === 0 ? `${spec.memoryMiB / 1024}G` : `${spec.memoryMiB}M`,
    disk_memory: spec.dataDiskBytes ? formatSize(spec.dataDiskBytes) : "0",
    start_command: spec.startCommand,
    status: vm.status,
    ready: vm.ready,
    image_name: vm.imageName,
    gpu_count: spec.gpuCount,
    ssh_port: spec.ports.ssh,
    vnc_port: spec.ports.vnc,
    custom_port: spec.ports.custom.map((f) => `${f.proto},${f.hostPort}:${f.guestPort}`),
    created_at: vm.createdAt,
    owner: vm.owner,
    rental_ended_at: vm.rentalEnd?.endedAt ?? null,
  };
}

function formatSize(bytes: number): string {
  const mib = bytes / 2 ** 20;
  return mib % 1024 === 0 ? `${mib / 1024}G` : `${Math.round(mib)}M`;
}

/** Seed 000 `/common/vm/...`: the VMs of this host. */
export const vmRoutes: FastifyPluginAsyncTypebox<{
  deps: { vms: VmService; vmQueries: VmQueries; disks: DiskService; snapshots: SnapshotService; groupVms?: GroupVms; v1: { forwardHost: string } };
}> = async (app, { deps }) => {
  const { vms, vmQueries: reads, disks, snapshots, groupVms } = deps;
  const forwardHost = deps.v1.forwardHost;

  app.get(
    "/common/vm/disk/list",
    { schema: { summary: "A VM's disks", tags: ["vm"], querystring: VmDiskListQuery, response: { 200: VmDiskList, 400: ErrorReply, 401: ErrorReply, 404: ErrorReply } } },
    async (req) => {
      const vm = reads.get(req.query.vm_id);
      return { vm_id: vm.id, disks: (await disks.list(vm)).map((d) => ({ name: d.name, file: d.file, size_bytes: d.sizeBytes })) };
    },
  );

  const snapshotItem = (s: Snapshot) => ({
    name: s.name,
    description: s.description,
    image_name: s.imageName,
    owner: s.owner,
    status: s.status,
    created_at: s.createdAt,
    data_disks: s.dataDisks.map((d) => ({ name: d.name, size_bytes: d.sizeBytes })),
  });

  app.get(
    "/common/vm/snapshot/list",
    {
      schema: { summary: "A VM's snapshots", tags: ["vm"], querystring: VmSnapshotListQuery, response: { 200: VmSnapshotList, 400: ErrorReply, 401: ErrorReply, 404: ErrorReply } },
    },
    async (req) => {
      const vm = reads.get(req.query.vm_id);
      return { vm_id: vm.id, snapshots: snapshots.list(vm.id).map(snapshotItem) };
    },
  );

  app.post(
    "/common/vm/snapshot/create",
    {
      schema: {
        summary: "Snapshot a VM's system disk, and the data disks named in `disks`",
        description:
          "Live when the VM runs (copies of one instant while the guest runs on, its filesystems frozen for that instant " +
          "when its guest agent answers), else from its disks; answered once the snapshot is complete. The image boots new " +
          "VMs of the VM's owner (and the operator's); a restore brings back the data disks it holds.",
        tags: ["vm"],
        body: VmSnapshotCreate,
        response: { 400: ErrorReply, 401: ErrorReply, 404: ErrorReply, 409: ErrorReply },
      },
    },
    async (req) => ({
      message: "ok" as const,
      snapshot: snapshotItem(await snapshots.create(req.body.vm_id, req.body.name, req.body.description ?? "", req.body.disks ?? [])),
    }),
  );

  app.post(
    "/common/vm/snapshot/restore",
    {
      schema: {
        summary: "Restore a shut-off VM to one of its snapshots",
        description:
          "Its system disk becomes the snapshot's again, and so does each data disk the snapshot holds (brought back if deleted " +
          "since; other data disks untouched); it boots from the snapshot's image from then on.",
        tags: ["vm"],
        body: VmSnapshotDelete,
        response: { 200: OkReply, 400: ErrorReply, 401: ErrorReply, 404: ErrorReply, 409: ErrorReply },
      },
    },
    async (req) => {
      await snapshots.restore(req.body.vm_id, req.body.name);
      return { message: "ok" as const };
    },
  );

  app.post(
    "/common/vm/snapshot/delete",
    {
      schema: {
        summary: "Delete a VM's snapshot",
        description: "Its image too; refused (409) while a VM boots from it or another snapshot is a delta on it. The VM may be gone already.",
        tags: ["vm"],
        body: VmSnapshotDelete,
        response: { 200: OkReply, 400: ErrorReply, 401: ErrorReply, 404: ErrorReply, 409: ErrorReply },
      },
    },
    async (req) => {
      await snapshots.delete(req.body.vm_id, req.body.name);
      return { message: "ok" as const };
    },
  );

  app.post(
    "/common/vm/disk/add",
    {
      schema: {
        summary: "Add a data disk to a VM",
        description: "Named after its last disk (vdc after vdb); hot-plugged into a running VM, whose guest sees it at once.",
        tags: ["vm"],
        body: VmDiskAdd,
        response: { 400: ErrorReply, 401: ErrorReply, 404: ErrorReply, 409: ErrorReply },
      },
    },
    async (req) => ({ message: "ok" as const, ...(await disks.add(req.body.vm_id, req.body.size_gib * 2 ** 30)) }),
  );

  app.post(
    "/common/vm/disk/resize",
    {
      schema: {
        summary: "Grow a VM's data disk",
        description: "Grows it BY grow_gib (DBC's meaning), live on a running VM (the guest is told the new size). Never shrinks.",
        tags: ["vm"],
        body: VmDiskResize,
        response: { 400: ErrorReply, 401: ErrorReply, 404: ErrorReply, 409: ErrorReply },
      },
    },
    async (req) => {
      const { sizeBytes } = await disks.resize(req.body.vm_id, req.body.disk, req.body.grow_gib * 2 ** 30);
      return { message: "ok" as const, name: req.body.disk, size_bytes: sizeBytes };
    },
  );

  app.post(
    "/common/vm/disk/delete",
    {
      schema: {
        summary: "Delete a VM's data disk",
        description: "Unplugged first from a running VM, once its guest releases it (else 409, nothing changed); an operator's data file is only detached.",
        tags: ["vm"],
        body: VmDiskDelete,
        response: { 200: OkReply, 400: ErrorReply, 401: ErrorReply, 404: ErrorReply, 409: ErrorReply },
      },
    },
    async (req) => {
      await disks.remove(req.body.vm_id, req.body.disk);
      return { message: "ok" as const };
    },
  );

  app.post(
    "/common/vm/add",
    {
      preValidation: unwrapData,
      schema: {
        summary: "Create and start a VM",
        description:
          "Creates the VM (a linked clone of the image plus an optional data disk), starts it, and answers once " +
          "its QEMU runs; `ready` in the list turns true when the guest is up. Also accepts seed 000's form " +
          "field `data` holding this object as JSON text. `start_command` is kept as a note and never executed.",
        tags: ["vm"],
        body: VmAdd,
        response: { 200: VmAddReply, 400: ErrorReply, 401: ErrorReply, 409: ErrorReply },
      },
    },
    async (req) => {
      const vm = await vms.create(fromHostAdd(req.body), { wait: true });
      return { message: "ok" as const, id: vm.id };
    },
  );

  app.get(
    "/common/vm/list",
    {
      schema: {
        summary: "The VMs of this host, or of the whole group (scope=group, on a master)",
        description:
          "With `scope=group` each VM also carries `node_id` and `node_address`. Members are asked in parallel " +
          "and never stall the list: a dead or silent one (2 s bound) is left out and named, with the reason, in " +
          "the header `x-batu-unreachable` (JSON: `[{node_id, reason}]`, the first 20; `x-batu-unreachable-count` " +
          "says how many). For large groups: `node_id` lists one node's VMs; `limit` returns a page, in node order " +
          "(the master, then its members as they joined), asking only the members it needs, and the header " +
          "`x-batu-next` holds the `after` of the next page (absent on the last).",
        tags: ["vm"],
        querystring: VmListQuery,
        response: { 200: VmList, 400: ErrorReply, 401: ErrorReply, 409: ErrorReply },
      },
    },
    async (req, reply) => {
      const { scope, node_id: nodeId, limit, after } = req.query;
      if (scope !== "group") {
        const only = nodeId !== undefined ? "node_id" : limit !== undefined ? "limit" : after !== undefined ? "after" : undefined;
        if (only) throw new ApiError("bad_request", `${only}: only with scope=group`);
        return reads.list().map(toItem);
      }
      if (!groupVms) throw new ApiError("not_master", "scope=group: this host is not a master");
      const local = nodeId === undefined || nodeId === groupVms.nodeId ? reads.list().map(toItem) : [];
      const page = await groupVms.list(local, {
        ...(nodeId !== undefined ? { nodeId } : {}),
        ...(limit !== undefined ? { limit: Number(limit) } : {}),
        ...(after !== undefined ? { after } : {}),
      });
      if (page.unreachable.length > 0) {
        // A header has room for some names, not for a thousand (clients refuse headers past 16 KiB).
        reply.header("x-batu-unreachable", asciiJson(page.unreachable.slice(0, UNREACHABLE_NAMED)));
        reply.header("x-batu-unreachable-count", String(page.unreachable.length));
      }
      if (page.next) reply.header("x-batu-next", page.next);
      // Tens of thousands of VMs: V8's own JSON with VmItem's fields only (the schema's serializer took ~5× as long).
      return reply.type("application/json; charset=utf-8").send(JSON.stringify(page.vms, VM_ITEM_FIELDS) as never);
    },
  );

  if (groupVms) {
    app.post(
      MEMBER_VMS_PATH,
      {
        schema: {
          summary: "This member's VMs, for its master's group-wide list (signed by the master's node key)",
          tags: ["group"],
          security: [],
          response: { 200: VmList, 401: ErrorReply },
        },
        // Public on the token level: the master's signature is checked instead. Its reply is the VMs: TLS only.
        config: { auth: "public", transport: "tls" },
      },
      async (req) => {
        groupVms.verifyMaster(req.headers, req.url, JSON.stringify(req.body ?? null));
        return reads.list().map(toItem);
      },
    );
  }

  app.post(
    "/common/vm/control",
    {
      preValidation: async (req) => {
        if (typeof req.body === "string") throw new ApiError("bad_request", `body: a command string is not accepted; ${CONTROL_USAGE}`);
        await unwrapData(req);
        const body = req.body as Record<string, unknown>;
        if (body && typeof body === "object" && "command" in body) {
          throw new ApiError("bad_request", `command: is not accepted; ${CONTROL_USAGE}`);
        }
      },
      schema: {
        summary: "Start, shut down, power off, restart, reset or delete a VM",
        description:
          "A structured action on one VM. Seed 000 ran a shell command here; batu never does: a command string " +
          "is refused with 400. `shutdown` presses the ACPI power button and powers off after a timeout; " +
          "`restart` is graceful unless `force` is true (then a reset). Answers when the action has finished.",
        tags: ["vm"],
        body: VmControl,
        response: { 200: OkReply, 400: ErrorReply, 401: ErrorReply, 404: ErrorReply, 409: ErrorReply },
      },
    },
    async (req) => {
      await vms.act(req.body.vm_id, req.body.action, { force: req.body.force ?? false });
      return { message: "ok" as const };
    },
  );

  app.get(
    "/common/vm/stats",
    {
      schema: {
        summary: "Live figures of a VM",
        description:
          "Status, uptime, vCPU time and usage (since the previous call), QEMU's resident memory, disk bytes " +
          "read/written (QMP query-blockstats). Network bytes are null for NAT (user-mode) NICs: QEMU offers no counter for them.",
        tags: ["vm"],
        querystring: VmStatsQuery,
        response: { 200: VmStats, 400: ErrorReply, 401: ErrorReply, 404: ErrorReply },
      },
    },
    async (req) => reads.stats(req.query.vm_id),
  );

  app.get(
    "/common/vm/limits",
    {
      schema: {
        summary: "A VM's caps on disk I/O and network bandwidth",
        description:
          "What applies to the VM (its renter's grant: `disk_iops`, `disk_mbps`, `net_mbit`; else config.json's " +
          "`vm_disk_iops`, `vm_disk_mbps`, `vm_net_mbit`), applied at each boot, and what QEMU and the kernel enforce now.",
        tags: ["vm"],
        querystring: VmStatsQuery,
        response: { 200: VmLimits, 400: ErrorReply, 401: ErrorReply, 404: ErrorReply },
      },
    },
    async (req) => reads.limits(req.query.vm_id),
  );

  app.get(
    "/common/vm/vnc",
    {
      schema: {
        summary: "Where a VM's VNC server listens, and its password",
        description:
          "For the operator's VNC viewer (`batu vm console`). `host` is null when VNC listens on every address: " +
          "reach it by the address this host was reached by.",
        tags: ["vm"],
        querystring: VmVncQuery,
        response: { 200: VmVnc, 400: ErrorReply, 401: ErrorReply, 404: ErrorReply },
      },
    },
    async (req) => {
      const vm = reads.get(req.query.vm_id);
      const everywhere = forwardHost === "0.0.0.0" || forwardHost === "::";
      return { vm_id: vm.id, host: everywhere ? null : forwardHost, port: vm.spec.ports.vnc, password: vm.spec.vncPassword, running: vm.status === "running" };
    },
  );

  app.get(
    "/common/vm/log",
    {
      schema: {
        summary: "A VM's lifecycle log",
        description:
          "What happened to the VM, as DBC's `tasks/logs` shows it to the renter: creation, each action and its outcome, " +
          "changes, and the end of its renter's rental (shut down, deleted after the retention). A deleted VM's log " +
          "stays readable until its id is used again.",
        tags: ["vm"],
        querystring: VmLogQuery,
        response: { 200: VmLog, 400: ErrorReply, 401: ErrorReply, 404: ErrorReply },
      },
    },
    async (req) => {
      const id = req.query.vm_id;
      const lines = reads.logLines(id, req.query.from ?? "tail", Number(req.query.count ?? 100));
      if (lines.length === 0) reads.get(id); // no VM, no log: 404
      return { vm_id: id, lines };
    },
  );
};

/** VmItem's fields, in its order: what a group-wide list passes on of each member's VMs (a replacer list for JSON.stringify). */
const VM_ITEM_FIELDS = Object.keys(VmItem.properties);

/** How many unreachable members `x-batu-unreachable` names at most. */
export const UNREACHABLE_NAMED = 20;

/** JSON with every non-ASCII character escaped (`\u00e9`): a header value must be Latin-1, a member's words need not be. */
export function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
