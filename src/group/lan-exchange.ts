import type { LanMember, LanView } from "../network/lan/model.js";

/**
 * What the group carries for the LAN networks (network/lan), in the heartbeats: each member reports
 * its VMs on LAN networks, and the master, which keeps the registry, answers what the member must
 * build (VXLAN peers, DHCP leases). The answer comes over TLS pinned to the master's node id.
 */
export interface LanExchange {
  /**
   * On a member: its VMs on LAN networks now, or undefined when it has nothing to report (it never
   * had one: a master of an older version, which knows no LAN, is never sent the field).
   */
  localMembers(): LanMember[] | undefined;
  /** On a member: the master's answer to its report. */
  viewsArrived(views: LanView[]): void;
  /** On the master: a member's report; what that member must build (`masterIp`: the master's address as that member reaches it). */
  memberReported(nodeId: string, members: readonly LanMember[], masterIp?: string): LanView[];
}
