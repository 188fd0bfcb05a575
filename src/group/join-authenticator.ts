import type { GroupJoin } from "../api/host.js";
import { ApiError } from "../api/errors.js";
import { secretEquals } from "../auth/secrets.js";
import { JoinProofVerifier, verifyMemberKeyProof } from "./join-proof.js";

export interface JoinAuthenticatorOptions {
  /** This host's node id: what a member's join proof must name. */
  nodeId: string;
  /** This host's group join token as it is now: what members must prove they hold. */
  joinToken: () => string;
  /** The operator's token as it is now, which seed 000 callers may present to the join endpoint too. */
  adminToken: () => string;
  now: () => Date;
}

/**
 * Who may ask to be recorded as a member: a caller with the join (or admin) token as a bearer token
 * (seed 000; with the join token, no node id), or one whose body carries a join proof and a proof of
 * its node key (join-proof.ts). Checked before the role, so a
 * host that is no master answers an unauthenticated join with 401, as it always did.
 */
export class JoinAuthenticator {
  private readonly proofs: JoinProofVerifier;

  constructor(private readonly opts: JoinAuthenticatorOptions) {
    this.proofs = new JoinProofVerifier(opts.now);
  }

  /**
   * Who is asking: the operator (admin token: may record any host) or a would-be member (join token
   * or proof: may record only itself). Throws ApiError "unauthorized" (or "bad_request" for a proof
   * without what it covers).
   */
  check(body: GroupJoin, bearer: string | undefined): "operator" | "member" {
    if (bearer !== undefined) {
      // Both compared, always: which token matched must not show in the time taken.
      const isAdmin = secretEquals(bearer, this.opts.adminToken());
      const isJoin = secretEquals(bearer, this.opts.joinToken());
      if (!isAdmin && !isJoin) throw new ApiError("unauthorized", "wrong bearer token");
      if (isAdmin) return "operator";
      // A node id is claimed only with its key (the proof form): a token alone could take another member's.
      if (body.node_id !== undefined) {
        throw new ApiError("bad_request", "node_id: a member names its node id only in a join that proves its node key (proof and key_proof, as `batu group join` sends)");
      }
      return "member";
    }
    if (!body.proof) throw new ApiError("unauthorized", "missing bearer token (Authorization: Bearer <join token>) or join proof");
    if (body.node_id === undefined || body.address === undefined) {
      throw new ApiError("bad_request", "proof: a join proof needs node_id and address in the body");
    }
    const claim = {
      masterNodeId: this.opts.nodeId,
      nodeId: body.node_id,
      address: body.address,
      nickname: body.nickname ?? "",
      at: body.proof.at,
      nonce: body.proof.nonce,
      tlsPort: body.tls_port ?? null,
      certSha256: body.cert_sha256 ?? null,
    };
    const refused = this.proofs.check(this.opts.joinToken(), claim, body.proof.mac);
    if (refused) throw new ApiError("unauthorized", `join refused: ${refused}`);
    if (!body.key_proof || !verifyMemberKeyProof(claim, body.key_proof)) {
      throw new ApiError("unauthorized", "join refused: key_proof does not prove the key of node_id");
    }
    return "member";
  }
}
