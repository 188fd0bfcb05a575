import type { IncomingHttpHeaders } from "node:http";
import { ApiError } from "../api/errors.js";
import type { GroupRouter } from "./forward.js";
import type { GroupPeer } from "./master-role.js";

/** The member route a master asks for a member's VMs (signed like a forwarded renter call). */
export const MEMBER_VMS_PATH = "/slave/group/vms";

/**
 * How many members a group-wide list asks at once (a page: in waves of 1, 2, 4, ... up to this). All
 * 1,000 of bench:scale's members asked at once made the master run 1,000 TLS handshakes together:
 * they ran past the 2 s connect bound and up to 972 healthy members came back "unreachable"; 128 at
 * a time still lost 47; 32 at a time none (a whole list of 1,000 then takes a few seconds: page it).
 */
export const GROUP_VMS_CONCURRENCY = 32;

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

/**
 * Which of the group's VMs: every one (seed 000), one node's (`nodeId`), or a page of `limit` after the
 * VM `after` (`<node_id>/<vm_id>`, the `next` of the page before). Pages follow the nodes in order (the
 * master, then its members as they joined) and each node's VMs in its own order; a page asks only
 * the members it needs.
 */
export interface GroupVmsQuery {
  nodeId?: string;
  limit?: number;
  after?: string;
}

export interface GroupVmsAnswer<T> {
  vms: Array<T & VmPlacement>;
  unreachable: UnreachableNode[];
  /** With `limit`: the `after` of the next page; null on the last. */
  next?: string | null;
}

export interface GroupVmsOptions {
  nodeId: string;
  selfAddress: () => string;
  isMaster: () => boolean;
  peers: () => GroupPeer[];
  router: Pick<GroupRouter, "forward" | "verifyForwarded">;
  /** Members asked at once; default GROUP_VMS_CONCURRENCY. */
  concurrency?: number;
}

/** A node the list may ask: the master itself (its VMs at hand) or a member. */
type Source<T> = { nodeId: string; address: string; local: T[] } | { nodeId: string; address: string; peer: GroupPeer };

/**
 * `GET /common/vm/list?scope=group` on a master: its own VMs and every member's, each with its node.
 * Members are asked in parallel (GROUP_VMS_CONCURRENCY at a time; a page in growing waves), with the routing bounds (a dead
 * member is not asked, a silent one costs at most the 2 s connect bound), so one bad member never
 * stalls the list.
 */
export class GroupVms {
  constructor(private readonly opts: GroupVmsOptions) {}

  /** This master's own node id: its VMs are the list's first. */
  get nodeId(): string {
    return this.opts.nodeId;
  }

  async list<T extends { id: string }>(local: T[], query: GroupVmsQuery = {}): Promise<GroupVmsAnswer<T>> {
    if (!this.opts.isMaster()) throw new ApiError("not_master", "scope=group: this host is not a master");
    let sources: Array<Source<T>> = [
      { nodeId: this.opts.nodeId, address: this.opts.selfAddress(), local },
      ...this.opts.peers().map((peer) => ({ nodeId: peer.nodeId, address: peer.address, peer })),
    ];
    if (query.nodeId !== undefined) {
      sources = sources.filter((s) => s.nodeId === query.nodeId);
      if (sources.length === 0) throw new ApiError("not_found", `node_id: ${query.nodeId} is neither this master nor one of its members`);
    }
    let afterVm: string | undefined;
    if (query.after !== undefined) {
      const [node, vm] = splitCursor(query.after);
      const at = sources.findIndex((s) => s.nodeId === node);
      if (at < 0) throw new ApiError("bad_request", `after: node ${node} is not in this list (it left the group): start again without after`);
      sources = sources.slice(at);
      afterVm = vm;
    }
    const limit = query.limit ?? Infinity;
    // Each node's answer (its VMs after the cursor, for the first), in node order.
    const answers: Array<{ vms: T[] } | UnreachableNode> = [];
    const askSource = async (k: number): Promise<void> => {
      const source = sources[k]!;
      const a = "local" in source ? { vms: source.local } : await this.ask<T>(source.peer);
      answers[k] = k === 0 && afterVm !== undefined && !("reason" in a) ? { vms: afterCursor(a.vms, afterVm, source.nodeId) } : a;
    };
    const concurrency = Math.max(1, this.opts.concurrency ?? GROUP_VMS_CONCURRENCY);
    if (query.limit === undefined) {
      // Every node: a pool of workers, each taking the next node as it is done with one.
      let launched = 0;
      const worker = async () => {
        while (launched < sources.length) await askSource(launched++);
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, sources.length) }, worker));
    } else {
      // A page: waves of 1, 2, 4, ... nodes (at most `concurrency`) until those asked hold a page, so a
      // page of a large group asks a few members more than it needs, never a whole wave of idle ones.
      let held = 0;
      for (let k = 0, wave = 1; k < sources.length && held < limit; wave = Math.min(2 * wave, concurrency)) {
        const batch = Array.from({ length: Math.min(wave, sources.length - k) }, (_, j) => k + j);
        await Promise.all(batch.map(askSource));
        for (const j of batch) held += "reason" in answers[j]! ? 0 : (answers[j] as { vms: T[] }).vms.length;
        k += batch.length;
      }
    }
    const answeredInRow = answers.length;

    const vms: Array<T & VmPlacement> = [];
    const unreachable: UnreachableNode[] = [];
    let more = false;
    for (let k = 0; k < answeredInRow && !more; k++) {
      const a = answers[k]!;
      if ("reason" in a) {
        unreachable.push(a);
        continue;
      }
      const where = { node_id: sources[k]!.nodeId, node_address: sources[k]!.address };
      for (const vm of a.vms) {
        if (vms.length === limit) {
          more = true;
          break;
        }
        // Fresh objects (parsed from the member's answer, or the caller's): placed in place, not copied.
        vms.push(Object.assign(vm, where));
      }
      // Full at the end of this node: any node after it may hold more.
      if (vms.length === limit && k + 1 < sources.length) more = true;
    }
    if (query.limit === undefined) return { vms, unreachable };
    const last = vms.at(-1);
    return { vms, unreachable, next: more && last ? `${last.node_id}/${last.id}` : null };
  }

  private async ask<T>(peer: GroupPeer): Promise<{ vms: T[] } | UnreachableNode> {
    try {
      const r = await this.opts.router.forward(peer, { method: "POST", url: MEMBER_VMS_PATH, bodyText: "{}", renter: null });
      const parsed: unknown = JSON.parse(r.body.toString("utf8"));
      if (r.status !== 200 || !Array.isArray(parsed)) {
        const why = (parsed as { message?: unknown } | null)?.message;
        return { node_id: peer.nodeId, reason: `the member refused (HTTP ${r.status}${typeof why === "string" ? `: ${why}` : ""})` };
      }
      return { vms: parsed as T[] };
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

/** The VMs after `vmId` of the cursor's node; a 400 naming `after` when that VM is gone. */
function afterCursor<T extends { id: string }>(vms: T[], vmId: string, nodeId: string): T[] {
  const at = vms.findIndex((vm) => vm.id === vmId);
  if (at < 0) throw new ApiError("bad_request", `after: no VM ${vmId} on node ${nodeId} (it was deleted): start again without after`);
  return vms.slice(at + 1);
}

/** `<node_id>/<vm_id>` (the schema has checked its shape). */
function splitCursor(after: string): [string, string] {
  const slash = after.indexOf("/");
  return [after.slice(0, slash), after.slice(slash + 1)];
}
