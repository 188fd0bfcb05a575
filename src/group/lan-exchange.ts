import type { LanMember, LanView } from "../network/lan/model.js";

/**
 * What the group carries for the LAN networks (network/lan), in the heartbeats: each member reports
 * its VMs on LAN networks, and the master, which keeps the registry, answers what the member must
 * build (VXLAN peers, DHCP leases). The answer comes over TLS pinned to the master's node id.
 */
export interface LanExchange {
  /** On a member: its VMs on LAN networks now. */
  localMembers(): LanMember[];
  /** On a member: the master's answer to its report. */
  viewsArrived(views: LanView[]): void;
  /** On the master: a member's report; what that member must build. */
  memberReported(nodeId: string, members: readonly LanMember[]): LanView[];
}
