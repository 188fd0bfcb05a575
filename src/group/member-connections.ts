import { PinnedTlsAgent } from "../sdk/pinned-tls.js";
import type { GroupPeer } from "./master-role.js";

/** Idle keep-alive sockets kept per member at most (calls beyond that in parallel open more). */
export const MAX_IDLE_SOCKETS_PER_MEMBER = 4;

/**
 * Keep-alive connections from a master to its members, for forwarded calls: a fresh TCP connection
 * per call cost the master ~0.2–0.3 ms (and the member an accept). Only for a member that is `alive`;
 * any other gets `false` (a fresh connection, bounded as before) and its pool is dropped, so a member
 * that went silent and came back starts over. A socket stays idle at most `idleMs`: when it is reused,
 * the member sent a whole reply on it within `idleMs`, as a fresh connect would have proved within
 * the connect bound. A socket the member closed (it stopped or restarted) leaves the pool on its own.
 * Connections are TLS to the member's pinned certificate: a pool serves one address and one pin, and
 * a member that moves or is pinned to a new certificate gets a new pool.
 */
export class MemberConnections {
  private readonly agents = new Map<string, { endpoint: string; agent: PinnedTlsAgent }>();

  constructor(
    /** Longest a socket waits idle for its next call: the forward's connect bound. */
    readonly idleMs: number,
    readonly maxIdleSockets: number = MAX_IDLE_SOCKETS_PER_MEMBER,
  ) {}

  /** The agent for a call to `peer` now: its pool while it is alive at this address and pin, else false. */
  agentFor(peer: GroupPeer): PinnedTlsAgent | false {
    const endpoint = peer.tls ? `${peer.address} ${peer.tls.port} ${peer.tls.sha256}` : undefined;
    const kept = this.agents.get(peer.nodeId);
    if (kept && (peer.state !== "alive" || kept.endpoint !== endpoint)) this.forget(peer.nodeId);
    if (peer.state !== "alive" || !peer.tls || !endpoint) return false;
    const reuse = this.agents.get(peer.nodeId);
    if (reuse) return reuse.agent;
    // `timeout` applies to idle sockets only: a call's own bounds are set on its request.
    const agent = new PinnedTlsAgent(peer.tls.sha256, { keepAlive: true, timeout: this.idleMs, maxFreeSockets: this.maxIdleSockets, scheduling: "lifo" });
    this.agents.set(peer.nodeId, { endpoint, agent });
    return agent;
  }

  /** Members with a pool now. */
  get size(): number {
    return this.agents.size;
  }

  /**
   * Stops pooling for a member: its idle sockets close now; a call in flight keeps its socket to the
   * end (its own bounds hold), which then closes after `idleMs` unused.
   */
  forget(nodeId: string): void {
    const kept = this.agents.get(nodeId);
    if (!kept) return;
    this.agents.delete(nodeId);
    for (const sockets of Object.values(kept.agent.freeSockets)) for (const s of sockets ?? []) s.destroy();
  }

  /** Closes every socket, calls in flight included (the agent is stopping). */
  close(): void {
    for (const { agent } of this.agents.values()) agent.destroy();
    this.agents.clear();
  }
}
