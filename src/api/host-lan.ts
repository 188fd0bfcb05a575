/**
 * What the group's heartbeats carry for the LAN networks (network/lan): a member's report of its VMs
 * on them, and the master's answer of what the member must build.
 */
import { Type } from "@sinclair/typebox";

const LanNetworkName = Type.String({ pattern: "^[A-Za-z0-9]{6,10}$" });
const Ipv4Text = Type.String({ pattern: "^\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}$", maxLength: 15 });

/** One of a member's VMs on a LAN network (network/lan), as its heartbeat reports it. */
export const LanMemberReport = Type.Object(
  {
    network: LanNetworkName,
    ip: Ipv4Text,
    task_id: Type.Union([Type.String({ pattern: "^[A-Za-z0-9_-]{1,64}$" }), Type.Null()]),
  },
  { additionalProperties: false },
);

/** What a member must build for one LAN network: the master's view for it. */
export const LanViewReply = Type.Object(
  {
    network: LanNetworkName,
    vni: Type.Integer({ minimum: 1, maximum: 2 ** 24 - 1 }),
    cidr: Type.String({ pattern: "^\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}/\\d{1,2}$" }),
    peers: Type.Array(Ipv4Text, { maxItems: 1000, description: "The other member hosts' addresses: the VXLAN's unicast peers" }),
    dhcp: Type.Union([
      Type.Array(Type.Object({ mac: Type.String({ pattern: "^[0-9a-f]{2}(:[0-9a-f]{2}){5}$" }), ip: Ipv4Text, hostname: Type.String({ pattern: "^[A-Za-z0-9-]{1,63}$" }) }, { additionalProperties: false }), { maxItems: 65536 }),
      Type.Null(),
    ], { description: "Set on the one host that serves the network's DHCP: every member's fixed lease" }),
  },
  { additionalProperties: false },
);
