import type { IncomingHttpHeaders } from "node:http";
import { ApiError } from "../api/errors.js";
import type { GroupRouter } from "./forward.js";
import type { GroupPeer } from "./master-role.js";

/** The member route a master asks for a member's VMs (signed like a forwarded renter call). */
export const MEMBER_VMS_PATH = "/slave/group/vms";

/** Where a VM of the group lives. */
export interface VmPlacement {
  node_id: string;
  node_address: string;
}

/** A member whose VMs could not be listed, and why. */
export interface UnreachableNode {
  node_id: string;
  reason: string;
}

export interface GroupVmsOptions {
  nodeId: string;
  selfAddress: () => string;
  isMaster: () => boolean;
  peers: () => GroupPeer[];
  router: Pick<GroupRouter, "forward" | "verifyForwarded">;
}

/**
 * `GET /common/vm/list?scope=group` on a master: its own VMs and every member's, each with its node.
 * Members are asked in parallel, with the routing bounds (a dead member is not asked, a silent one
 * costs at most the 2 s connect bound), so one bad member never stalls the list.
 */
export class GroupVms {
  constructor(private readonly opts: GroupVmsOptions) {}

  async list<T extends object>(local: T[]): Promise<{ vms: Array<T & VmPlacement>; unreachable: UnreachableNode[] }> {
    if (!this.opts.isMaster()) throw new ApiError("not_master", "scope=group: this host is not a master");
    const here = { node_id: this.opts.nodeId, node_address: this.opts.selfAddress() };
    const vms: Array<T & VmPlacement> = local.map((vm) => ({ ...vm, ...here }));
    const unreachable: UnreachableNode[] = [];
    const answers = await Promise.all(this.opts.peers().map((peer) => this.ask<T>(peer)));
    for (const a of answers) {
      if ("reason" in a) unreachable.push(a);
      else vms.push(...a.vms);
    }
    return { vms, unreachable };
  }

  private async ask<T>(peer: GroupPeer): Promise<{ vms: Array<T & VmPlacement> } | UnreachableNode> {
    try {
      const r = await this.opts.router.forward(peer, { method: "POST", url: MEMBER_VMS_PATH, bodyText: "{}", renter: null });
      const parsed: unknown = JSON.parse(r.body.toString("utf8"));
      if (r.status !== 200 || !Array.isArray(parsed)) {
        const why = (parsed as { message?: unknown } | null)?.message;
        return { node_id: peer.nodeId, reason: `the member refused (HTTP ${r.status}${typeof why === "string" ? `: ${why}` : ""})` };
      }
      const where = { node_id: peer.nodeId, node_address: peer.address };
      return { vms: (parsed as T[]).map((vm) => ({ ...vm, ...where })) };
    } catch (e) {
      return { node_id: peer.nodeId, reason: (e as Error).message };
    }
  }

  /** On a member: lets the call through only when its master signed it. Throws ApiError 401. */
  verifyMaster(headers: IncomingHttpHeaders, url: string, bodyText: string): void {
    let vouched: string | null | undefined;
    try {
      vouched = this.opts.router.verifyForwarded(headers, "POST", url, bodyText);
    } catch (e) {
      throw new ApiError("unauthorized", (e as Error).message);
    }
    if (vouched === undefined) throw new ApiError("unauthorized", "only this host's master may ask, with a signed call");
  }
}
