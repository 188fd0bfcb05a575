import type { BecomeMember, BecomeMemberReply, GroupJoinReply, MasterHello, SlaveHostConfig } from "../api/host.js";
import { ApiError } from "../api/errors.js";
import { HostApiError, HostClient, UnreachableError, normalizeAddress, seedAddress } from "../sdk/index.js";
import { joinAddress, localAddressToward, splitAddress } from "./local-address.js";
import { memberJoinProof, memberKeyProof, newNonce, verifyMasterProof, verifyMasterTls } from "./join-proof.js";
import type { Authenticator } from "../auth/signed-envelope.js";
import type { TlsEndpoint } from "../sdk/pinned-tls.js";
import { DiscoveryError, discoverMaster, type DiscoveredMaster } from "./discovery.js";

export interface JoinMasterContext {
  nodeId: string;
  /** This node's key: the join proves it holds the key of the node id it claims. */
  key: Authenticator;
  /** The port this agent listens on: what it registers with. */
  agentPort: () => number;
  /** Where this agent serves TLS, and its certificate: the master pins it. */
  tls: () => TlsEndpoint;
  nickname: () => string;
  now: () => Date;
}

/**
 * Joins a master's group, named by address or found on the LAN: checks that the master holds the join
 * token (its proof over our challenge) and learns its TLS certificate (signed by its node key over the
 * same challenge), then registers over TLS to that certificate with a proof of our own, which covers
 * our certificate (the token is never sent). Returns the member's host_config.json to write and the
 * reply; changes nothing itself.
 */
export async function joinMaster(req: BecomeMember, ctx: JoinMasterContext): Promise<{ config: SlaveHostConfig; reply: BecomeMemberReply }> {
  if ((req.master === undefined) === (req.discover !== true)) {
    throw new ApiError("bad_request", "master: give either a master address or discover: true");
  }
  const found = req.master !== undefined ? { address: normalizeAddress(req.master), nodeId: undefined } : await discover(req, ctx.nodeId);
  // By discovery too: the hello names the master's certificate, which an SSDP answer does not carry.
  const master = await helloAt(found.address, req.token, ctx.nodeId, found.nodeId);
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
  const own = ctx.tls();
  const claim = { masterNodeId: master.nodeId, nodeId: ctx.nodeId, address, nickname, at, nonce, tlsPort: own.port, certSha256: own.sha256 };
  const mac = memberJoinProof(req.token, claim);
  let reply: GroupJoinReply;
  try {
    reply = await new HostClient(joinAddress(host, master.tls.port), undefined, undefined, { sha256: master.tls.sha256 }).recordJoin({
      address,
      node_id: ctx.nodeId,
      nickname,
      proof: { at, nonce, mac },
      key_proof: memberKeyProof(ctx.key, claim),
      tls_port: own.port,
      cert_sha256: own.sha256,
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

/**
 * Asks the host at `address` who it is, and believes it only if it proves it holds the token (and is
 * `expectedNodeId`, when discovery named one already); its TLS endpoint only when its node key signed it.
 */
async function helloAt(address: string, token: string, selfNodeId: string, expectedNodeId?: string): Promise<DiscoveredMaster & { tls: TlsEndpoint }> {
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
  if (expectedNodeId !== undefined && hello.node_id !== expectedNodeId) {
    throw new ApiError("upstream_refused", `the master ${address} is not the node that answered discovery`);
  }
  const tls = verifyMasterTls(hello, challenge, hello.node_id);
  if (!tls) throw new ApiError("upstream_refused", `the master ${address} names no TLS certificate signed by its node key (an older batu: upgrade it)`);
  return { address, nodeId: hello.node_id, groupName: hello.group_name, tls };
}

function upstreamError(address: string, e: unknown, what: string): unknown {
  if (e instanceof UnreachableError) return new ApiError("master_unreachable", e.message);
  if (e instanceof HostApiError) return new ApiError("upstream_refused", `the master ${address} refused to ${what}: ${e.message}`);
  return e;
}
