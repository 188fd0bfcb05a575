import { DiscoveryError, discoverMaster } from "../group/discovery.js";
import type { GroupService } from "../group/service.js";
import type { Logger } from "../lib/logger.js";

export interface AutoJoinOptions {
  group: GroupService;
  joinToken: string;
  groupName?: string | undefined;
  /** Out of reach this long, the master is looked for again on the LAN (it may have a new address). */
  lostAfterMs: number;
  /** Pause between attempts. */
  retryMs?: number;
  log: Logger;
  now?: () => Date;
}

/**
 * `batu agent --discover`: until this host is a member, look for its master on the local network
 * and join it; a master that is not up yet (machines of a LAN boot in any order) is simply waited
 * for. Once a member, a master out of reach for `lostAfterMs` is looked for again, by its node id:
 * a master that came back with another address (DHCP) is followed. Returns a stop function.
 */
export function startAutoJoin(opts: AutoJoinOptions): () => void {
  const now = opts.now ?? (() => new Date());
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let lostSince: number | null = null;

  const join = async () => {
    const r = await opts.group.becomeMember({
      discover: true,
      token: opts.joinToken,
      ...(opts.groupName !== undefined ? { group_name: opts.groupName } : {}),
    });
    opts.log.info({ master: r.master, group: r.group_name }, "discovered and joined the master");
  };

  const followMovedMaster = async () => {
    const host = opts.group.hostConfig;
    if (host.host_type !== "slave" || !host.master_node_id) return;
    if (opts.group.masterContact().reachable) {
      lostSince = null;
      return;
    }
    lostSince ??= now().getTime();
    if (now().getTime() - lostSince < opts.lostAfterMs) return;
    try {
      const found = await discoverMaster({ joinToken: opts.joinToken, groupName: host.group_name, selfNodeId: opts.group.nodeId });
      if (opts.group.followMaster(found)) opts.log.info({ master: found.address }, "the master moved: following it");
    } catch (e) {
      if (!(e instanceof DiscoveryError)) throw e;
      opts.log.warn({ err: e.message }, "the master is out of reach and was not found on the LAN; searching again");
    }
    lostSince = null;
  };

  const attempt = async () => {
    if (stopped) return;
    try {
      if (opts.group.hostConfig.host_type === "slave") await followMovedMaster();
      else await join();
    } catch (e) {
      opts.log.warn({ err: (e as Error).message }, "no master joined yet; searching again");
    }
    if (!stopped) {
      timer = setTimeout(() => void attempt(), opts.retryMs ?? 5000);
      timer.unref();
    }
  };
  void attempt();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}
