import type { HostForward } from "./spec.js";

/**
 * The host forwards of one user-mode netdev, read from HMP `info usernet` (QMP has no query for
 * them). Pure. The text has one section per slirp netdev, headed `<Hub|VLAN> <n> (<netdev id>):`,
 * then one line per socket; a forward is a `TCP[HOST_FORWARD]` or `UDP[HOST_FORWARD]` line:
 * `proto[state] fd source-address source-port dest-address dest-port recvq sendq`.
 */
export function parseUsernetForwards(text: string, netdevId: string): HostForward[] {
  const out: HostForward[] = [];
  let inSection = false;
  for (const raw of text.split(/\r?\n/)) {
    const header = /^\S.*\((.+)\):\s*$/.exec(raw);
    if (header) {
      inSection = header[1] === netdevId;
      continue;
    }
    if (!inSection) continue;
    const m = /^\s*(TCP|UDP)\[HOST_FORWARD\]\s+-?\d+\s+(\S+)\s+(\d+)\s+\S+\s+(\d+)\b/.exec(raw);
    if (!m) continue;
    out.push({ proto: m[1] === "TCP" ? "tcp" : "udp", hostAddr: m[2]!, hostPort: Number(m[3]), guestPort: Number(m[4]) });
  }
  return out;
}
