import { writeFile } from "node:fs/promises";
import { exec, ExecError } from "../lib/exec.js";

/**
 * The host's network devices batu makes, through `ip` and `bridge` (argument arrays, never a shell):
 * bridges, taps and VXLAN ports. Each call acts in the agent's own network namespace (a test runs
 * the agent in one of its own).
 */

const ip = (...args: string[]) => exec("ip", args, { timeoutMs: 10_000 });

/** Whether a device of that name exists. */
export async function linkExists(name: string): Promise<boolean> {
  try {
    await ip("link", "show", "dev", name);
    return true;
  } catch (e) {
    if (e instanceof ExecError) return false;
    throw e;
  }
}

/** The names of the devices whose names start with `prefix`. */
export async function linksNamed(prefix: string): Promise<string[]> {
  const { stdout } = await ip("-j", "link", "show");
  const links = JSON.parse(stdout || "[]") as { ifname: string }[];
  return links.map((l) => l.ifname).filter((n) => n.startsWith(prefix));
}

/** A bridge with `address` (CIDR form) on it, up. Left as it is when it exists with that address. */
export async function ensureBridge(name: string, address: string | null): Promise<void> {
  if (!(await linkExists(name))) await ip("link", "add", name, "type", "bridge");
  if (address) await addAddress(name, address);
  await ip("link", "set", name, "up");
}

/**
 * A persistent tap for a VM's NIC, a port of `bridge`, up. `isolated`: the port talks to the
 * bridge's own side (the host) only, never to other isolated ports: guests of the NAT network
 * reach each other only through the host's IP stack, where their security groups apply.
 */
export async function createTap(name: string, bridge: string, opts: { isolated: boolean; mtu?: number }): Promise<void> {
  if (await linkExists(name)) await deleteLink(name);
  await ip("tuntap", "add", "dev", name, "mode", "tap");
  try {
    if (opts.mtu) await ip("link", "set", name, "mtu", String(opts.mtu));
    await ip("link", "set", name, "master", bridge);
    if (opts.isolated) await exec("bridge", ["link", "set", "dev", name, "isolated", "on"], { timeoutMs: 10_000 });
    await ip("link", "set", name, "up");
  } catch (e) {
    await deleteLink(name);
    throw e;
  }
}

/** Removes a device; none of that name is fine. */
export async function deleteLink(name: string): Promise<void> {
  try {
    await ip("link", "del", "dev", name);
  } catch (e) {
    if (e instanceof ExecError && /Cannot find device|does not exist/.test(e.stderr)) return;
    throw e;
  }
}

/** The host routes IPv4 between its links (what NAT needs); in the agent's namespace only. */
export async function enableIpv4Forwarding(): Promise<void> {
  await writeFile("/proc/sys/net/ipv4/ip_forward", "1\n");
}

/**
 * Adds an address (`a.b.c.d/32`) to a device; already there is fine. `noPrefixRoute`: without the
 * route to its subnet (an address the host must not route by: a renter's LAN range may be anything).
 */
export async function addAddress(dev: string, address: string, opts: { noPrefixRoute?: boolean } = {}): Promise<void> {
  try {
    await ip("addr", "add", address, "dev", dev, ...(opts.noPrefixRoute ? ["noprefixroute"] : []));
  } catch (e) {
    if (e instanceof ExecError && /File exists|already assigned/.test(e.stderr)) return;
    throw e;
  }
}

/** Removes an address from a device; not there is fine. */
export async function removeAddress(dev: string, address: string): Promise<void> {
  try {
    await ip("addr", "del", address, "dev", dev);
  } catch (e) {
    if (e instanceof ExecError && /Cannot assign|not found|does not exist/i.test(e.stderr)) return;
    throw e;
  }
}

/** The device of the default route (the host's uplink), or null. */
export async function defaultRouteDevice(): Promise<string | null> {
  const { stdout } = await ip("-j", "route", "show", "default");
  const routes = JSON.parse(stdout || "[]") as { dev?: string }[];
  return routes[0]?.dev ?? null;
}

const bridgeCmd = (...args: string[]) => exec("bridge", args, { timeoutMs: 10_000 });
/** The all-zeros MAC: a VXLAN's default destinations (flooded frames go to each). */
const ALL_ZEROS = "00:00:00:00:00:00";

/**
 * A VXLAN port of `bridge`, up: id `vni`, unicast only (its peers are its default destinations,
 * `setVxlanPeers`), learning guests' MACs from what arrives. Left as it is when it exists.
 */
export async function ensureVxlan(name: string, vni: number, bridge: string, opts: { port: number; mtu: number }): Promise<void> {
  // One of another network of that name (deleted and made again with another id): made anew.
  const held = await vxlanId(name);
  if (held !== null && held !== vni) await deleteLink(name);
  if (held !== vni) {
    await ip("link", "add", name, "type", "vxlan", "id", String(vni), "dstport", String(opts.port));
    try {
      await ip("link", "set", name, "mtu", String(opts.mtu));
      await ip("link", "set", name, "master", bridge);
    } catch (e) {
      await deleteLink(name);
      throw e;
    }
  }
  await ip("link", "set", name, "up");
}

/** A VXLAN device's id, or null when there is no device of that name (or it is no VXLAN). */
async function vxlanId(name: string): Promise<number | null> {
  if (!(await linkExists(name))) return null;
  const { stdout } = await ip("-d", "-j", "link", "show", "dev", name);
  const info = (JSON.parse(stdout || "[]") as { linkinfo?: { info_kind?: string; info_data?: { id?: number } } }[])[0]?.linkinfo;
  return info?.info_kind === "vxlan" && typeof info.info_data?.id === "number" ? info.info_data.id : -1;
}

/** The peers a VXLAN sends flooded frames (broadcasts, unknown unicast) to. */
export async function vxlanPeers(name: string): Promise<string[]> {
  const { stdout } = await bridgeCmd("-j", "fdb", "show", "dev", name);
  const entries = JSON.parse(stdout || "[]") as { mac?: string; dst?: string }[];
  return entries.filter((e) => e.mac === ALL_ZEROS && e.dst).map((e) => e.dst!);
}

/** Makes a VXLAN's flood list exactly `peers` (head-end replication to each member host). */
export async function setVxlanPeers(name: string, peers: readonly string[]): Promise<void> {
  const now = new Set(await vxlanPeers(name));
  for (const p of peers) if (!now.has(p)) await bridgeCmd("fdb", "append", ALL_ZEROS, "dev", name, "dst", p);
  for (const p of now) if (!peers.includes(p)) await bridgeCmd("fdb", "del", ALL_ZEROS, "dev", name, "dst", p);
}
