import { networkInterfaces } from "node:os";
import { joinAddress } from "../group/local-address.js";

/**
 * The address this agent gives the group as its own: the bind address when it is a specific one,
 * else the first non-internal IPv4 address of the host, else loopback.
 */
export function selfAddress(bindHost: string, port: number): string {
  if (bindHost !== "0.0.0.0" && bindHost !== "::" && bindHost !== "") return joinAddress(bindHost, port);
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.family === "IPv4" && !a.internal) return joinAddress(a.address, port);
    }
  }
  return joinAddress("127.0.0.1", port);
}
