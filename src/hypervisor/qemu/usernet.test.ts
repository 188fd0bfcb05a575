import { describe, expect, it } from "vitest";
import { parseUsernetForwards } from "./usernet.js";

// QEMU 7.2's `info usernet` with two slirp netdevs, a forward in use and a guest connection.
const INFO = [
  "Hub -1 (netdev-net0):",
  "  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ",
  "  TCP[HOST_FORWARD]   9       127.0.0.1 45557       10.0.2.15    81     0     0",
  "  TCP[ESTABLISHED]   12       127.0.0.1 51234       10.0.2.15    81     0     0",
  "  TCP[HOST_FORWARD]   8         0.0.0.0 20001       10.0.2.15    22     0     0",
  "  UDP[HOST_FORWARD]   3       127.0.0.1 45556       10.0.2.15    53     0     0",
  "Hub -1 (netdev-other):",
  "  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ",
  "  TCP[HOST_FORWARD]   7       127.0.0.1 40000       10.0.2.15    80     0     0",
  "",
].join("\r\n");

describe("parseUsernetForwards", () => {
  it("reads the forwards of the named netdev only, and no connection", () => {
    expect(parseUsernetForwards(INFO, "netdev-net0")).toEqual([
      { proto: "tcp", hostAddr: "127.0.0.1", hostPort: 45557, guestPort: 81 },
      { proto: "tcp", hostAddr: "0.0.0.0", hostPort: 20001, guestPort: 22 },
      { proto: "udp", hostAddr: "127.0.0.1", hostPort: 45556, guestPort: 53 },
    ]);
    expect(parseUsernetForwards(INFO, "netdev-none")).toEqual([]);
    expect(parseUsernetForwards("", "netdev-net0")).toEqual([]);
  });
});
