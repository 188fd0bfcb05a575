import { createSocket, type Socket } from "node:dgram";
import { networkInterfaces } from "node:os";
import type { Logger } from "../lib/logger.js";
import { joinAddress } from "./local-address.js";
import { AnswerBudget } from "./answer-budget.js";
import { discoveryProof, newNonce, verifyDiscoveryProof } from "./join-proof.js";
import { SSDP_ADDRESS, SSDP_PORT, formatAnswer, formatSearch, parseAnswer, parseSearch } from "./ssdp.js";

/**
 * Group discovery on the local network (SSDP, see ssdp.ts). A master answers searches for its group
 * with a proof of holding the join token; a joining host searches, and believes only answers whose
 * proof checks against the token it was given. The token never leaves either host.
 */

/** The IPv4 addresses multicast goes out of and is listened for on: every interface but loopback. */
function lanAddresses(only?: string): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.family === "IPv4" && !a.internal && (only === undefined || a.address === only)) out.push(a.address);
    }
  }
  return out;
}

/** Whether an agent bound to `host` serves the LAN at all (a loopback agent serves only its machine). */
const servesLan = (host: string) => !/^(127\.|::1$|localhost$)/.test(host);

export interface ResponderOptions {
  /** The agent's bind address: all interfaces (0.0.0.0, ::), one IP, or loopback (no discovery). */
  bindHost: string;
  /** What to answer with, asked at each search: null while this host is not a master. */
  master: () => { nodeId: string; groupName: string; port: number; joinToken: string } | null;
  version: string;
  log: Logger;
  port?: number;
}

/** A master's SSDP responder. Never throws: discovery failing must not stop the agent. */
export class DiscoveryResponder {
  private socket: Socket | undefined;
  private readonly budget = new AnswerBudget();

  constructor(private readonly opts: ResponderOptions) {}

  async start(): Promise<void> {
    if (!servesLan(this.opts.bindHost)) return;
    const wildcard = this.opts.bindHost === "0.0.0.0" || this.opts.bindHost === "::";
    const addresses = lanAddresses(wildcard ? undefined : this.opts.bindHost);
    if (addresses.length === 0) return;
    const socket = createSocket({ type: "udp4", reuseAddr: true });
    socket.on("error", (e) => this.opts.log.warn({ err: e.message }, "discovery responder error"));
    socket.on("message", (msg, rinfo) => this.answer(socket, msg.toString("utf8"), rinfo.address, rinfo.port));
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once("error", reject);
        socket.bind(this.opts.port ?? SSDP_PORT, () => {
          socket.off("error", reject);
          resolve();
        });
      });
      // One interface that cannot join the group (no multicast on it) must not silence the others.
      const joined = addresses.filter((a) => {
        try {
          socket.addMembership(SSDP_ADDRESS, a);
          return true;
        } catch (e) {
          this.opts.log.warn({ address: a, err: (e as Error).message }, "discovery: cannot listen on this interface");
          return false;
        }
      });
      if (joined.length === 0) throw new Error("no interface could join the SSDP multicast group");
      this.socket = socket;
      this.opts.log.debug({ interfaces: joined }, "discovery responder listening");
    } catch (e) {
      socket.close();
      this.opts.log.warn({ err: (e as Error).message }, "discovery disabled: cannot listen for SSDP searches");
    }
  }

  private answer(socket: Socket, text: string, host: string, port: number): void {
    const search = parseSearch(text);
    const me = this.opts.master();
    if (!search || !me) return;
    if (search.groupName !== null && search.groupName !== me.groupName) return;
    if (!this.budget.take(host)) return;
    const localHost = this.localAddressFor(host);
    const proof = discoveryProof(me.joinToken, me.nodeId, me.groupName, search.challenge, joinAddress(localHost, me.port));
    const reply = formatAnswer({ nodeId: me.nodeId, groupName: me.groupName, port: me.port, proof }, localHost, this.opts.version);
    socket.send(reply, port, host, (err) => {
      if (err) this.opts.log.debug({ err: err.message, to: host }, "discovery answer not sent");
    });
  }

  /** The address of this host on the asker's subnet: LOCATION's, and the one its proof is bound to (the answer's source). */
  private localAddressFor(peer: string): string {
    const toInt = (ip: string) => ip.split(".").reduce((n, o) => ((n << 8) | Number(o)) >>> 0, 0);
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) {
        if (a.family !== "IPv4" || a.internal) continue;
        const mask = toInt(a.netmask);
        if ((toInt(a.address) & mask) === (toInt(peer) & mask)) return a.address;
      }
    }
    return lanAddresses()[0] ?? "0.0.0.0";
  }

  close(): void {
    this.socket?.close();
    this.socket = undefined;
  }
}

/** A master found on the LAN whose proof checked. */
export interface DiscoveredMaster {
  address: string;
  nodeId: string;
  groupName: string;
}

export class DiscoveryError extends Error {}

export interface SearchOptions {
  joinToken: string;
  /** Only this group's master; undefined: the one master that holds the token. */
  groupName?: string | undefined;
  /** This host's node id: a host never discovers itself. */
  selfNodeId?: string;
  timeoutMs?: number;
  port?: number;
}

/**
 * Finds the master holding `joinToken` on the local network: searches out of every interface, three
 * times (UDP may drop one), and returns once the window ends. Answers that fail the proof are ignored
 * (every fresh batu host is the master of a group of one and answers too).
 */
export async function discoverMaster(opts: SearchOptions): Promise<DiscoveredMaster> {
  const timeoutMs = opts.timeoutMs ?? 3000;
  const addresses = lanAddresses();
  if (addresses.length === 0) throw new DiscoveryError("no network interface to search on (only loopback)");
  const challenge = newNonce();
  const search = Buffer.from(formatSearch({ groupName: opts.groupName ?? null, challenge }));
  const found = new Map<string, DiscoveredMaster>();
  const onAnswer = (msg: Buffer, from: string) => {
    const a = parseAnswer(msg.toString("utf8"));
    if (!a || a.nodeId === opts.selfNodeId) return;
    if (opts.groupName !== undefined && a.groupName !== opts.groupName) return;
    const address = joinAddress(from, a.port);
    if (!verifyDiscoveryProof(opts.joinToken, { node_id: a.nodeId, group_name: a.groupName, proof: a.proof }, challenge, address)) return;
    if (!found.has(a.nodeId)) found.set(a.nodeId, { address, nodeId: a.nodeId, groupName: a.groupName });
  };
  // One socket per interface, bound to its address: the search leaves by that interface and the
  // unicast answers come back to it.
  const sockets = addresses.map(() => createSocket({ type: "udp4" }));
  const timers: NodeJS.Timeout[] = [];
  try {
    await Promise.all(
      sockets.map(
        (socket, i) =>
          new Promise<void>((resolve, reject) => {
            socket.on("message", (msg, rinfo) => onAnswer(msg, rinfo.address));
            socket.once("error", reject);
            socket.bind(0, addresses[i], () => {
              // A search that cannot leave by one interface must not end the others' (nor the process).
              socket.on("error", () => undefined);
              socket.setMulticastInterface(addresses[i]!);
              resolve();
            });
          }),
      ),
    );
    const send = () => sockets.forEach((socket) => socket.send(search, opts.port ?? SSDP_PORT, SSDP_ADDRESS, () => undefined));
    for (const at of [0, timeoutMs / 6, timeoutMs / 2]) timers.push(setTimeout(send, at));
    await new Promise((r) => setTimeout(r, timeoutMs));
  } finally {
    timers.forEach(clearTimeout);
    sockets.forEach((socket) => socket.close());
  }
  const masters = [...found.values()];
  const which = opts.groupName !== undefined ? `the master of group ${opts.groupName}` : "a master";
  if (masters.length === 0) {
    throw new DiscoveryError(`no answer from ${which} holding this join token on the local network within ${timeoutMs / 1000} s`);
  }
  if (masters.length > 1) {
    throw new DiscoveryError(`several masters hold this join token (${masters.map((m) => m.address).join(", ")}): name one by address`);
  }
  return masters[0]!;
}
