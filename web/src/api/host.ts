import type {
  VmAdd,
  VmControl,
  VmDiskAdd,
  VmDiskDelete,
  VmDiskList,
  VmDiskResize,
  VmItem,
  VmLimits,
  VmLog,
  VmSnapshotCreate,
  VmSnapshotDelete,
  VmSnapshotItem,
  VmSnapshotList,
  VmStats,
} from "../../../src/api/host-vm.js";
import type { RentalItem, RentGrant, RentList } from "../../../src/api/host-rent.js";
import type { UsageReport } from "../../../src/api/host-gpu.js";
import type { BecomeMember, BecomeMemberReply, GroupList, GroupRemove, GroupRemoveReply, MyMaster } from "../../../src/api/host.js";
import type { GpuList } from "../../../src/api/host-gpu.js";
import type { VmConsoleTicket } from "../../../src/api/host-console.js";
import type { ImageList, Transfer } from "../../../src/api/host-image.js";
import { readEvents } from "./sse.js";

/** A refusal of the host API: its HTTP status and `{message}`. */
export class HostApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** What `/common/vm/events` sends: the whole list first, then each change and deletion. */
export type VmEvent = { type: "list"; vms: VmItem[] } | { type: "vm"; vm: VmItem } | { type: "deleted"; id: string };

/**
 * The operator's typed client of the host API (`Authorization: Bearer <admin token>`). Its types are
 * the server's own schemas (src/api/), so a changed field breaks the console's build, not its users.
 * Every call of the console goes through here.
 */
export class HostClient {
  constructor(private readonly token: string) {}

  private async send(method: "GET" | "POST", path: string, body?: unknown): Promise<Response> {
    return fetch(path, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  }

  private async call<T>(method: "GET" | "POST", path: string, body?: unknown): Promise<T> {
    const res = await this.send(method, path, body);
    const reply = (await res.json().catch(() => ({}))) as T & { message?: unknown };
    if (!res.ok) throw new HostApiError(res.status, typeof reply.message === "string" ? reply.message : `HTTP ${res.status}`);
    return reply;
  }

  private get<T>(path: string, query: Record<string, string> = {}): Promise<T> {
    const q = new URLSearchParams(query).toString();
    return this.call<T>("GET", q ? `${path}?${q}` : path);
  }

  /** Whether the token is the admin token (a cheap authenticated read). */
  async check(): Promise<void> {
    await this.get("/common/config");
  }

  vms = () => this.get<VmItem[]>("/common/vm/list");
  addVm = (body: VmAdd) => this.call<{ message: "ok"; id: string }>("POST", "/common/vm/add", body);
  control = (body: VmControl) => this.call<{ message: "ok" }>("POST", "/common/vm/control", body);
  stats = (vmId: string) => this.get<VmStats>("/common/vm/stats", { vm_id: vmId });
  log = (vmId: string) => this.get<VmLog>("/common/vm/log", { vm_id: vmId, from: "tail", count: "100" });
  disks = (vmId: string) => this.get<VmDiskList>("/common/vm/disk/list", { vm_id: vmId });
  snapshots = (vmId: string) => this.get<VmSnapshotList>("/common/vm/snapshot/list", { vm_id: vmId });
  limits = (vmId: string) => this.get<VmLimits>("/common/vm/limits", { vm_id: vmId });
  addDisk = (body: VmDiskAdd) => this.call<{ message: "ok"; name: string; size_bytes: number }>("POST", "/common/vm/disk/add", body);
  resizeDisk = (body: VmDiskResize) => this.call<{ message: "ok"; name: string; size_bytes: number }>("POST", "/common/vm/disk/resize", body);
  deleteDisk = (body: VmDiskDelete) => this.call<{ message: "ok" }>("POST", "/common/vm/disk/delete", body);
  createSnapshot = (body: VmSnapshotCreate) => this.call<{ message: "ok"; snapshot: VmSnapshotItem }>("POST", "/common/vm/snapshot/create", body);
  restoreSnapshot = (body: VmSnapshotDelete) => this.call<{ message: "ok" }>("POST", "/common/vm/snapshot/restore", body);
  deleteSnapshot = (body: VmSnapshotDelete) => this.call<{ message: "ok" }>("POST", "/common/vm/snapshot/delete", body);
  rentals = () => this.get<RentList>("/common/rent/list");
  grant = (body: RentGrant) => this.call<{ message: "ok"; rental: RentalItem }>("POST", "/common/rent/grant", body);
  revoke = (id: number) => this.call<{ message: "ok" }>("POST", "/common/rent/revoke", { id });
  usage = () => this.get<UsageReport>("/common/usage");

  /** The usage report as CSV (the same period as `usage()`), for a download the page makes itself: a link cannot carry the token. */
  async usageCsv(): Promise<Blob> {
    const res = await this.send("GET", "/common/usage?format=csv");
    if (!res.ok) throw new HostApiError(res.status, `HTTP ${res.status}`);
    return res.blob();
  }
  consoleTicket = (vmId: string) => this.call<VmConsoleTicket>("POST", "/common/vm/console", { vm_id: vmId });
  group = () => this.get<GroupList>("/master/group/list");
  removeMember = (body: GroupRemove) => this.call<GroupRemoveReply>("POST", "/master/group/remove", body);
  myMaster = () => this.get<MyMaster>("/slave/group/my/master");
  join = (body: BecomeMember) => this.call<BecomeMemberReply>("POST", "/slave/group/join", body);
  gpus = () => this.get<GpuList>("/common/gpu/list");
  images = () => this.get<ImageList>("/common/image/list");
  imageServers = () => this.get<{ servers: string[] }>("/common/image/servers");
  serverImages = (server: string) => this.get<ImageList>("/common/image/list", { server });
  pullImage = (server: string, name: string) => this.call<Transfer>("POST", "/common/image/pull", { server, name });
  pushImage = (server: string, name: string) => this.call<Transfer>("POST", "/common/image/push", { server, name });
  transfer = (name: string, direction: Transfer["direction"]) => this.get<Transfer>("/common/image/progress", { name, direction });
  stopTransfer = (name: string, direction: Transfer["direction"]) => this.call<{ message: "ok" }>("POST", "/common/image/stop", { name, direction });
  deleteImage = (name: string) => this.call<{ message: "ok" }>("POST", "/common/image/delete", { name });

  /** Follows `/common/vm/events` until `signal` aborts. */
  vmEvents(signal: AbortSignal, onEvent: (e: VmEvent) => void): Promise<void> {
    return readEvents("/common/vm/events", { headers: { authorization: `Bearer ${this.token}` }, signal }, (type, data) => {
      if (type === "list") onEvent({ type, vms: data as VmItem[] });
      else if (type === "vm") onEvent({ type, vm: data as VmItem });
      else if (type === "deleted") onEvent({ type, id: (data as { id: string }).id });
    });
  }
}
