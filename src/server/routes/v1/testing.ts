/** What the renter routes' unit tests share: their dependencies over read-only VMs, and a recording group router. */
import type { ForwardCall } from "../../../group/forward.js";
import type { GroupPeer } from "../../../group/master-role.js";
import type { readOnlyVms } from "../../../vm/testing.js";
import type { V1Deps, V1Group } from "./deps.js";

/**
 * The routes' dependencies over `vms` (readOnlyVms()): a node with no name that frees no memory and
 * reports nothing of itself, with what a test file cares about (its node id, how callers are
 * authorized, a group...) given in `own`.
 */
export function testV1Deps(vms: ReturnType<typeof readOnlyVms>, own: Pick<V1Deps, "nodeId" | "renters"> & Partial<V1Deps>): V1Deps {
  return {
    nickname: () => "",
    version: "test",
    vms: vms.service,
    vmQueries: vms.queries,
    disks: vms.disks,
    snapshots: vms.snapshots,
    images: vms.images,
    nodeInfo: async () => ({}),
    freeMemory: async () => "not allowed",
    forwardHost: "127.0.0.1",
    ...own,
  };
}

/** A group router that knows `peer` alone, records each call forwarded to it in `forwarded`, and answers `reply` (a DBC envelope's JSON). */
export function recordingRouter(peer: GroupPeer, forwarded: ForwardCall[], reply: string): V1Group["router"] {
  return {
    peer: (id) => (id === peer.nodeId ? peer : undefined),
    forward: async (_p, call) => {
      forwarded.push(call);
      return { status: 200, contentType: "application/json; charset=utf-8", body: Buffer.from(reply) };
    },
    stream: async () => {
      throw new Error("no stream in this file");
    },
    verifyForwarded: () => undefined,
  };
}
