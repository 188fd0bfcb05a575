import type { GroupSession, GroupSessionReply } from "../api/host-group-session.js";
import type { CordonBody, DrainReply, Maintenance } from "../api/host-maintenance.js";
import type { GpuList, UsageReport } from "../api/host-gpu.js";
import type {
  BecomeMember,
  BecomeMemberReply,
  GroupHeartbeat,
  GroupHeartbeatReply,
  GroupJoin,
  GroupJoinReply,
  GroupList,
  GroupRemove,
  GroupRemoveReply,
  MasterHello,
  MyMaster,
  SystemConfig,
  TokenRotate,
  TokenRotateReply,
} from "../api/host.js";
import type { RentGrant, RentGrantReply, RentList, RentListQuery, RentRevoke } from "../api/host-rent.js";
import { baseUrl } from "./address.js";
import type {
  VmAdd,
  VmControl,
  VmDiskAdd,
  VmDiskDelete,
  VmDiskList,
  VmDiskResize,
  VmItem,
  VmLog,
  VmLogQuery,
  VmSnapshotCreate,
  VmSnapshotDelete,
  VmSnapshotItem,
  VmSnapshotList,
  VmStats,
  VmVnc,
} from "../api/host-vm.js";
import { requestJson, requestJsonReply } from "./http.js";
import type { PinnedTlsAgent } from "./pinned-tls.js";

/** One image as `/common/image/list` answers it. */
export interface ImageItem {
  name: string;
  size_bytes: number;
  sha256?: string;
  owner?: string | null;
}

/** A transfer as `/common/image/pull|push|progress` answer it. */
export interface ImageTransfer {
  name: string;
  direction: "download" | "upload";
  server: string;
  status: "downloading" | "uploading" | "done" | "stopped" | "failed";
  progress: number;
  error: string | null;
}

/** Which page of a master's group-wide VM list (`/common/vm/list?scope=group`). */
export interface GroupVmQuery {
  /** Only this node's VMs (the master's own or a member's). */
  node_id?: string;
  /** At most this many VMs (1 to 10,000); without it, every VM in one answer. */
  limit?: number;
  /** The page after this VM, `<node_id>/<vm_id>`: the `next` of the page before. */
  after?: string;
}

/** A member whose VMs a list left out, and why. */
export interface UnreachableVmNode {
  node_id: string;
  reason: string;
}

/** One page of the group-wide VM list. */
export interface GroupVmPage {
  /** In node order (the master's, then its members' as they joined), each with `node_id` and `node_address`. */
  vms: VmItem[];
  /** The `after` of the next page (`x-batu-next`); null on the last. */
  next: string | null;
  /** Members left out of this page (the master names the first 20), and how many in all. */
  unreachable: UnreachableVmNode[];
  unreachableCount: number;
}

/** VMs per call when walking the whole group-wide list: a page of 100 costs the master ~15 ms (docs/scale.md). */
export const GROUP_VM_PAGE = 500;

/**
 * Typed client of an agent's host API (seed 000): over HTTP (the CLI to its own agent, on loopback; a
 * master's hello), or over TLS to a pinned certificate (`tls`: agents calling each other).
 */
export class HostClient {
  readonly url: string;
  constructor(
    private readonly address: string,
    private readonly token?: string,
    private readonly timeoutMs = 10_000,
    private readonly tls?: { sha256: string },
    /** With `tls`: a keep-alive pool of that pin to send over (default: a connection per call). */
    private readonly agent?: PinnedTlsAgent,
  ) {
    this.url = baseUrl(address, tls ? "https" : "http");
  }

  private get<T>(path: string): Promise<T> {
    return requestJson<T>(this.address, path, { token: this.token, timeoutMs: this.timeoutMs, tls: this.tls, agent: this.agent });
  }

  private post<T>(path: string, body: unknown, token = this.token): Promise<T> {
    return requestJson<T>(this.address, path, { method: "POST", token, body, timeoutMs: this.timeoutMs, tls: this.tls, agent: this.agent });
  }

  config(): Promise<SystemConfig> {
    return this.get("/common/config");
  }

  groupList(): Promise<GroupList> {
    return this.get("/master/group/list");
  }

  myMaster(): Promise<MyMaster> {
    return this.get("/slave/group/my/master");
  }

  /**
   * Member → master: record me. Authenticated by `body.proof` (batu: the token never travels) or,
   * as seed 000 callers do, by the join token itself as a bearer token.
   */
  recordJoin(body: GroupJoin, joinToken?: string): Promise<GroupJoinReply> {
    return this.post("/master/group/join", body, joinToken);
  }

  /** Anyone → master: who are you? The proof over `challenge` shows it holds the join token. */
  hello(challenge: string): Promise<MasterHello> {
    return this.get(`/master/group/hello?challenge=${encodeURIComponent(challenge)}`);
  }

  /** Member → master: a signed heartbeat (no token). */
  heartbeat(body: GroupHeartbeat): Promise<GroupHeartbeatReply> {
    return this.post("/master/group/heartbeat", body, undefined);
  }

  /** Member → master: open a session key (signed by the member's node key; no token). */
  openSession(body: GroupSession): Promise<GroupSessionReply> {
    return this.post("/master/group/session", body, undefined);
  }

  /** Operator → master: forget a member. */
  groupRemove(body: GroupRemove): Promise<GroupRemoveReply> {
    return this.post("/master/group/remove", body);
  }

  /** Operator → own agent: become a member of that master's group. */
  becomeMember(body: BecomeMember): Promise<BecomeMemberReply> {
    return this.post("/slave/group/join", body);
  }

  /** Operator: rent a node to a wallet or a multisig set until a time. */
  rentGrant(body: RentGrant): Promise<RentGrantReply> {
    return this.post("/common/rent/grant", body);
  }

  /** Operator: the rental ledger, optionally of one node and/or in one state. */
  /** Each renter's use of the node over a period (`/common/usage`). */
  /** Operator → own agent: whether the host is cordoned or drained. */
  maintenance(): Promise<Maintenance> {
    return this.get("/common/host/maintenance");
  }

  /** Operator → own agent: no VM starts here from now on (`drain`: and the running ones shut down). */
  cordon(body: CordonBody): Promise<Maintenance> {
    return this.post("/common/host/cordon", body);
  }

  drain(body: CordonBody): Promise<DrainReply> {
    return this.post("/common/host/drain", body);
  }

  uncordon(): Promise<{ message: "ok" }> {
    return this.post("/common/host/uncordon", {});
  }

  usage(query: { from?: string; to?: string } = {}): Promise<UsageReport> {
    const q = new URLSearchParams(Object.entries(query).filter((e): e is [string, string] => e[1] !== undefined)).toString();
    return this.get(`/common/usage${q ? `?${q}` : ""}`);
  }

  /** The node's GPUs for passthrough and who holds each (`/common/gpu/list`). */
  gpuList(): Promise<GpuList> {
    return this.get("/common/gpu/list");
  }

  rentList(query: RentListQuery = {}): Promise<RentList> {
    const q = new URLSearchParams(Object.entries(query).filter((e): e is [string, string] => e[1] !== undefined));
    return this.get(`/common/rent/list${q.size > 0 ? `?${q}` : ""}`);
  }

  /** Operator: replace this host's admin or join token (the old one is refused from then on). */
  rotateToken(body: TokenRotate): Promise<TokenRotateReply> {
    return this.post("/common/token/rotate", body);
  }

  /** Operator: end a rental now. */
  rentRevoke(body: RentRevoke): Promise<RentGrantReply> {
    return this.post("/common/rent/revoke", body);
  }

  /** Operator: a VM's disks. */
  diskList(vmId: string): Promise<VmDiskList> {
    return this.get(`/common/vm/disk/list?vm_id=${encodeURIComponent(vmId)}`);
  }

  /** Operator: a new data disk for a VM (hot-plugged into a running one). */
  diskAdd(body: VmDiskAdd): Promise<{ message: "ok"; name: string }> {
    return this.post("/common/vm/disk/add", body);
  }

  /** Operator: grow a VM's data disk by `grow_gib`. */
  diskResize(body: VmDiskResize): Promise<{ message: "ok"; name: string; size_bytes: number }> {
    return this.post("/common/vm/disk/resize", body);
  }

  /** Operator: delete a VM's data disk. */
  diskDelete(body: VmDiskDelete): Promise<{ message: "ok" }> {
    return this.post("/common/vm/disk/delete", body);
  }

  /** Operator: the image servers this node knows. */
  imageServers(): Promise<{ servers: string[] }> {
    return this.get("/common/image/servers");
  }

  /** Operator: this node's images, or an image server's. */
  imageList(server?: string): Promise<{ images: ImageItem[] }> {
    return this.get(`/common/image/list${server ? `?server=${encodeURIComponent(server)}` : ""}`);
  }

  /** Operator: start bringing an image from a server, or sending one to it. */
  imageTransfer(direction: "pull" | "push", body: { server: string; name: string }): Promise<ImageTransfer> {
    return this.post(`/common/image/${direction}`, body);
  }

  /** Operator: a transfer's state. */
  imageProgress(name: string, direction: "download" | "upload"): Promise<ImageTransfer> {
    return this.get(`/common/image/progress?name=${encodeURIComponent(name)}&direction=${direction}`);
  }

  /** Operator: stop a transfer. */
  imageStop(body: { name: string; direction: "download" | "upload" }): Promise<{ message: "ok" }> {
    return this.post("/common/image/stop", body);
  }

  /** Operator: delete an image of this node. */
  imageDelete(name: string): Promise<{ message: "ok" }> {
    return this.post("/common/image/delete", { name });
  }

  /** Operator: a VM's snapshots. */
  snapshotList(vmId: string): Promise<VmSnapshotList> {
    return this.get(`/common/vm/snapshot/list?vm_id=${encodeURIComponent(vmId)}`);
  }

  /** Operator: snapshot a VM's system disk and the data disks named (live when it runs); answered once made. */
  snapshotCreate(body: VmSnapshotCreate): Promise<{ message: "ok"; snapshot: VmSnapshotItem }> {
    return this.post("/common/vm/snapshot/create", body);
  }

  /** Operator: put a shut-off VM back to one of its snapshots. */
  snapshotRestore(body: VmSnapshotDelete): Promise<{ message: "ok" }> {
    return this.post("/common/vm/snapshot/restore", body);
  }

  /** Operator: delete a VM's snapshot and its image. */
  snapshotDelete(body: VmSnapshotDelete): Promise<{ message: "ok" }> {
    return this.post("/common/vm/snapshot/delete", body);
  }

  /** Operator: this host's VMs, or (`group`, on a master) every node's in one answer (a large group: groupVmPages). */
  vmList(scope: "host" | "group" = "host"): Promise<VmItem[]> {
    return this.get(`/common/vm/list${scope === "group" ? "?scope=group" : ""}`);
  }

  /**
   * Operator → master: one page of the group's VMs. The master asks only the members the page needs;
   * a cursor whose VM or node is gone since is refused (HostApiError 400 naming `after`).
   */
  async groupVmPage(query: GroupVmQuery = {}): Promise<GroupVmPage> {
    const q = new URLSearchParams({ scope: "group" });
    if (query.node_id !== undefined) q.set("node_id", query.node_id);
    if (query.limit !== undefined) q.set("limit", String(query.limit));
    if (query.after !== undefined) q.set("after", query.after);
    const { body, headers } = await requestJsonReply<VmItem[]>(this.address, `/common/vm/list?${q}`, {
      token: this.token,
      timeoutMs: this.timeoutMs,
      tls: this.tls,
      agent: this.agent,
    });
    const named = headerText(headers["x-batu-unreachable"]);
    const unreachable = named ? (JSON.parse(named) as UnreachableVmNode[]) : [];
    return {
      vms: body,
      next: headerText(headers["x-batu-next"]) ?? null,
      unreachable,
      unreachableCount: Number(headerText(headers["x-batu-unreachable-count"]) ?? unreachable.length),
    };
  }

  /** Operator → master: every page of the group's VMs (or one node's), `limit` (default GROUP_VM_PAGE) a call, in order. */
  async *groupVmPages(query: Omit<GroupVmQuery, "after"> = {}): AsyncGenerator<GroupVmPage> {
    let after: string | undefined;
    do {
      const page = await this.groupVmPage({ ...query, limit: query.limit ?? GROUP_VM_PAGE, ...(after !== undefined ? { after } : {}) });
      yield page;
      after = page.next ?? undefined;
    } while (after !== undefined);
  }

  /** Operator: create and start a VM; answered once its QEMU runs (`ready` in the list follows). */
  vmAdd(body: VmAdd): Promise<{ message: "ok"; id: string }> {
    return this.post("/common/vm/add", body);
  }

  /** Operator: start, shut down, power off, restart, reset or delete a VM; answered when done. */
  vmControl(body: VmControl): Promise<{ message: "ok" }> {
    return this.post("/common/vm/control", body);
  }

  /** Operator: a VM's live figures. */
  vmStats(vmId: string): Promise<VmStats> {
    return this.get(`/common/vm/stats?vm_id=${encodeURIComponent(vmId)}`);
  }

  /** Operator: a VM's lifecycle log. */
  vmLog(query: VmLogQuery): Promise<VmLog> {
    const q = new URLSearchParams({ vm_id: query.vm_id, ...(query.from ? { from: query.from } : {}), ...(query.count ? { count: query.count } : {}) });
    return this.get(`/common/vm/log?${q}`);
  }

  /** Operator: where a VM's VNC listens, and its password. */
  vmVnc(vmId: string): Promise<VmVnc> {
    return this.get(`/common/vm/vnc?vm_id=${encodeURIComponent(vmId)}`);
  }
}

/** A header's value as one string (node gives a list only for the few headers that may repeat). */
function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
