import type { GroupService } from "../group/membership.js";
import type { Logger } from "../lib/logger.js";

export interface AutoJoinOptions {
  group: GroupService;
  joinToken: string;
  groupName?: string | undefined;
  /** Pause between attempts while no master answers. */
  retryMs?: number;
  log: Logger;
}

/**
 * `batu agent --discover`: until this host is a member, look for its master on the local network
 * and join it. A master that is not up yet (machines of a LAN boot in any order) is simply waited for.
 * Returns a stop function.
 */
export function startAutoJoin(opts: AutoJoinOptions): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const attempt = async () => {
    if (stopped || opts.group.hostConfig.host_type === "slave") return;
    try {
      const r = await opts.group.becomeMember({
        discover: true,
        token: opts.joinToken,
        ...(opts.groupName !== undefined ? { group_name: opts.groupName } : {}),
      });
      opts.log.info({ master: r.master, group: r.group_name }, "discovered and joined the master");
    } catch (e) {
      opts.log.warn({ err: (e as Error).message }, "no master joined yet; searching again");
      if (!stopped) {
        timer = setTimeout(() => void attempt(), opts.retryMs ?? 5000);
        timer.unref();
      }
    }
  };
  void attempt();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}
