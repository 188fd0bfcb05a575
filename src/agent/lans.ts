import { createHash } from "node:crypto";
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
 * change; on a member, the heartbeats carry the report and the master's answer (LanExchange).
 */
export function startLans(w: LanWiring): () => void {
  const addressOf = (nodeId: string): string | undefined => {
    const address = nodeId === w.nodeId ? w.group.selfAddress : w.group.peer(nodeId)?.address;
    return address ? splitAddress(address).host : undefined;
  };
  const localMembers = (): LanMember[] =>
    w.repo.list().flatMap((vm) => (vm.spec.lan ? [{ network: vm.spec.lan.network, ip: vm.spec.lan.ip, task_id: vm.taskId }] : []));

  // One refresh at a time; a change during one asks for one more after it.
  let running: Promise<void> | null = null;
  let again = false;
  const refresh = (): void => {
    if (running) {
      again = true;
      return;
    }
    running = (async () => {
      do {
        again = false;
        try {
          if (w.group.holdsRegistries) {
            w.registry.report(w.nodeId, localMembers(), { boundGraceMs: 0 });
            await w.network.applyLans(w.registry.viewsFor(w.nodeId, addressOf));
          } else {
            await w.network.applyLans(null);
          }
        } catch (e) {
          w.log.warn({ err: e }, "LAN networks: the host's links could not be made to match");
        }
      } while (again);
    })().finally(() => {
      running = null;
    });
  };

  let lastViews = "";
  const exchange: LanExchange = {
    localMembers,
    viewsArrived: (views: LanView[]) => {
      const digest = createHash("sha256").update(JSON.stringify(views)).digest("hex");
      if (digest === lastViews) return;
      lastViews = digest;
      running = (running ?? Promise.resolve()).then(() =>
        w.network.applyLans(views).catch((e: unknown) => w.log.warn({ err: e }, "LAN networks: the master's view could not be built")),
      );
    },
    memberReported: (nodeId, members) => {
      w.registry.report(nodeId, members);
      return w.registry.viewsFor(nodeId, addressOf);
    },
  };
  w.group.useLans(exchange);
  w.registry.onChange(refresh);
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
