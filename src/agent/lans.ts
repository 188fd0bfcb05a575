import type { Logger } from "../lib/logger.js";
import type { GroupService } from "../group/service.js";
import type { LanExchange } from "../group/lan-exchange.js";
import { splitAddress } from "../group/local-address.js";
import type { LanMember, LanView } from "../network/lan/model.js";
import type { LanRegistry } from "../network/lan/registry.js";
import type { GuestNetwork } from "../vm/guest-network.js";
import type { VmRepo } from "../vm/repo.js";
import type { Vms } from "../vm/vms.js";

export interface LanWiring {
  nodeId: string;
  registry: LanRegistry;
  network: GuestNetwork;
  repo: VmRepo;
  vms: Vms;
  group: GroupService;
  log: Logger;
  /** A network with no member for this long is removed (DBC: 3 days). */
  unusedMs: () => number;
  /** How often the host's LAN links are checked against the registry anyway, and unused networks swept. */
  periodMs?: number;
}

/**
 * Wires the LAN networks into a running agent. Where this agent keeps the registry (a master, a
 * lone agent), it reports its own VMs to it and builds what the registry answers, after every
 * change; on a member, the heartbeats carry the report and the master's answer (LanExchange). Every
 * build goes through one queue: one at a time, the last state wins, a failed one is tried again.
 */
export function startLans(w: LanWiring): () => void {
  const addressOf = (masterIp?: string) => (nodeId: string): string | undefined => {
    if (nodeId === w.nodeId && masterIp) return masterIp;
    const address = nodeId === w.nodeId ? w.group.selfAddress : w.group.peer(nodeId)?.address;
    return address ? splitAddress(address).host : undefined;
  };
  const localMembers = (): LanMember[] =>
    w.repo.list().flatMap((vm) => (vm.spec.lan ? [{ network: vm.spec.lan.network, ip: vm.spec.lan.ip, task_id: vm.taskId }] : []));

  /** On a member: the master's last answer not built yet. */
  let pendingViews: LanView[] | null = null;
  let lastBuilt = "";
  let running = false;
  let again = false;
  const build = async (): Promise<void> => {
    if (w.group.holdsRegistries) {
      w.registry.report(w.nodeId, localMembers(), { boundGraceMs: 0 });
      await w.network.applyLans(w.registry.viewsFor(w.nodeId, addressOf()));
      return;
    }
    const views = pendingViews;
    const digest = views ? JSON.stringify(views) : lastBuilt;
    await w.network.applyLans(views && digest !== lastBuilt ? views : null);
    if (views) {
      lastBuilt = digest;
      if (pendingViews === views) pendingViews = null;
    }
  };
  const refresh = (): void => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    void (async () => {
      do {
        again = false;
        try {
          await build();
        } catch (e) {
          w.log.warn({ err: e }, "LAN networks: the host's links could not be made to match");
        }
      } while (again);
      running = false;
    })();
  };

  let reportedAny = false;
  const exchange: LanExchange = {
    localMembers: () => {
      const members = localMembers();
      // Once this member had LAN VMs, it reports even none (so the master frees their addresses).
      if (members.length > 0) reportedAny = true;
      return reportedAny ? members : undefined;
    },
    viewsArrived: (views) => {
      if (JSON.stringify(views) === lastBuilt && pendingViews === null) return;
      pendingViews = views;
      refresh();
    },
    memberReported: (nodeId, members, masterIp) => {
      w.registry.report(nodeId, members);
      return w.registry.viewsFor(nodeId, addressOf(masterIp));
    },
  };
  w.group.useLans(exchange);
  // A member the operator removed no longer holds addresses (its networks can be deleted).
  w.group.onMemberRemoved((nodeId) => w.registry.forgetNode(nodeId));
  w.registry.onChange(() => {
    if (w.group.holdsRegistries) refresh();
  });
  w.vms.queries.onChange((c) => {
    // A VM on a LAN made, deleted, started or stopped.
    const vm = w.repo.get(c.id);
    if (c.status === "deleted" || vm?.spec.lan) refresh();
  });
  const sweep = () => {
    if (!w.group.holdsRegistries) return;
    const removed = w.registry.sweepUnused(w.unusedMs());
    if (removed.length) w.log.info({ networks: removed }, "LAN networks unused too long removed");
  };
  const timer = setInterval(() => {
    sweep();
    refresh();
  }, w.periodMs ?? 60_000);
  timer.unref();
  sweep();
  refresh();
  return () => {
    clearInterval(timer);
    w.group.useLans(undefined);
  };
}
