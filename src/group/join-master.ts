import type { BecomeMember, BecomeMemberReply, GroupJoinReply, MasterHello, SlaveHostConfig } from "../api/host.js";
import { ApiError } from "../api/errors.js";
import { HostApiError, HostClient, UnreachableError, normalizeAddress, seedAddress } from "../sdk/index.js";
import { joinAddress, localAddressToward, splitAddress } from "./local-address.js";
import { memberJoinProof, memberKeyProof, newNonce, verifyMasterProof } from "./join-proof.js";
import type { Authenticator } from "../auth/signed-envelope.js";
import { DiscoveryError, discoverMaster, type DiscoveredMaster } from "./discovery.js";

export interface JoinMasterContext {
  nodeId: string;
  /** This node's key: the join proves it holds the key of the node id it claims. */
  key: Authenticator;
  /** The port this agent listens on: what it registers with. */
  agentPort: () => number;
  nickname: () => string;
  now: () => Date;
}

/**
 * Joins a master's group, named by address or found on the LAN: checks that the master holds the join
 * token (its proof over our challenge), then registers with a proof of our own (the token is never
 * sent). Returns the member's host_config.json to write and the reply; changes nothing itself.
 */
export async function joinMaster(req: BecomeMember, ctx: JoinMasterContext): Promise<{ config: SlaveHostConfig; reply: BecomeMemberReply }> {
  if ((req.master === undefined) === (req.discover !== true)) {
    throw new ApiError("bad_request", "master: give either a master address or discover: true");
  }
  const master = req.master !== undefined ? await helloAt(normalizeAddress(req.master), req.token, ctx.nodeId) : await discover(req, ctx.nodeId);
  const { host, port } = splitAddress(master.address);
  let ownIp: string;
  try {
    ownIp = await localAddressToward(host, port);
  } catch (e) {
    throw new ApiError("master_unreachable", `the master ${master.address} could not be reached: ${(e as Error).message}`);
  }
  const address = joinAddress(ownIp, ctx.agentPort());
  const nickname = ctx.nickname();
  const at = ctx.now().getTime();
  const nonce = newNonce();
  const claim = { masterNodeId: master.nodeId, nodeId: ctx.nodeId, address, nickname, at, nonce };
  const mac = memberJoinProof(req.token, claim);
  let reply: GroupJoinReply;
  try {
    reply = await new HostClient(master.address).recordJoin({
      address,
      node_id: ctx.nodeId,
      nickname,
      proof: { at, nonce, mac },
      key_proof: memberKeyProof(ctx.key, claim),
    });
  } catch (e) {
    throw upstreamError(master.address, e, "record this host");
  }
  return {
    config: {
      host_type: "slave",
      master: seedAddress(master.address),
      have_group: true,
      group_name: reply.group_name,
      master_node_id: master.nodeId,
    },
    reply: { message: "ok", master: master.address, address: reply.address, group_name: reply.group_name },
  };
}

async function discover(req: BecomeMember, selfNodeId: string): Promise<DiscoveredMaster> {
  try {
    return await discoverMaster({ joinToken: req.token, groupName: req.group_name, selfNodeId });
  } catch (e) {
    if (e instanceof DiscoveryError) throw new ApiError("master_unreachable", `discovery: ${e.message}`);
    throw e;
  }
}

/** Asks the host at `address` who it is, and believes it only if it proves it holds the token. */
async function helloAt(address: string, token: string, selfNodeId: string): Promise<DiscoveredMaster> {
  const challenge = newNonce();
  let hello: MasterHello;
  try {
    hello = await new HostClient(address).hello(challenge);
  } catch (e) {
    throw upstreamError(address, e, "say who it is");
  }
  if (hello.node_id === selfNodeId) throw new ApiError("conflict", "a host cannot join its own group");
  if (!verifyMasterProof(token, hello, challenge)) {
    throw new ApiError("upstream_refused", `the master ${address} does not hold this join token: wrong token, or not the master you meant`);
  }
  return { address, nodeId: hello.node_id, groupName: hello.group_name };
}

function upstreamError(address: string, e: unknown, what: string): unknown {
  if (e instanceof UnreachableError) return new ApiError("master_unreachable", e.message);
  if (e instanceof HostApiError) return new ApiError("upstream_refused", `the master ${address} refused to ${what}: ${e.message}`);
  return e;
}
