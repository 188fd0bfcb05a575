/**
 * A node's signature on a request to an image server (a download, a piece, an upload): its node key
 * over the method, the path and a time and nonce, in the agents' one signed envelope. An image
 * server serves the operator's images to anyone on the LAN (as DBC's rsync servers do); a renter's
 * own image (an uploaded snapshot) and every upload need a signature by a node of the server's
 * group, so a renter's data never leaves the group and no stranger fills the server's disk.
 */
import { randomBytes } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { EnvelopeChecker, nodeKeyAuthenticator, sealEnvelope, type Authenticator, type EnvelopeRefusal } from "../auth/signed-envelope.js";
import { WindowedNonces } from "../auth/replay-store.js";

export const IMAGE_SIGNATURE_HEADERS = {
  node: "x-batu-image-node",
  at: "x-batu-image-at",
  nonce: "x-batu-image-nonce",
  sig: "x-batu-image-sig",
} as const;

const TAG = "batu-image/1";
/** A signed image request further than this from the server's clock is refused. */
export const IMAGE_REQUEST_MAX_SKEW_MS = 60_000;

/** The headers that sign `method url` (path and query) as node `nodeId`, with its node key. */
export function signImageRequest(key: Authenticator, nodeId: string, method: string, url: string, now = new Date()): Record<string, string> {
  const at = String(now.getTime());
  const nonce = randomBytes(16).toString("hex");
  const sig = sealEnvelope(key, TAG, [method.toUpperCase(), url, at, nonce]);
  return { [IMAGE_SIGNATURE_HEADERS.node]: nodeId, [IMAGE_SIGNATURE_HEADERS.at]: at, [IMAGE_SIGNATURE_HEADERS.nonce]: nonce, [IMAGE_SIGNATURE_HEADERS.sig]: sig };
}

export class ImageRequestRefused extends Error {
  constructor(why: string) {
    super(`image request refused: ${why}`);
    this.name = "ImageRequestRefused";
  }
}

const REFUSALS: Record<EnvelopeRefusal, string> = {
  skew: "its time is too far from this server's clock",
  malformed: "its nonce is malformed",
  replayed: "it was used already",
  proof: "its signature does not hold",
};

const one = (v: string | string[] | undefined) => (Array.isArray(v) ? undefined : v);

/** Checks image requests' signatures against the nodes of this server's group. */
export class ImageRequestVerifier {
  private readonly checker = new EnvelopeChecker(IMAGE_REQUEST_MAX_SKEW_MS, new WindowedNonces(2 * IMAGE_REQUEST_MAX_SKEW_MS));

  constructor(
    /** Whether `nodeId` is this server's own node or a node of its group. */
    private readonly isGroupNode: (nodeId: string) => boolean,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /**
   * The group node that signed the request; null for an unsigned one or one signed by a node outside
   * the group (it is anyone on the LAN, then). Throws ImageRequestRefused for a group node's
   * signature that does not hold (a forgery, a replay, a stale time).
   */
  verify(headers: IncomingHttpHeaders, method: string, url: string): string | null {
    const sig = one(headers[IMAGE_SIGNATURE_HEADERS.sig]);
    if (sig === undefined) return null;
    const node = one(headers[IMAGE_SIGNATURE_HEADERS.node]) ?? "";
    const at = one(headers[IMAGE_SIGNATURE_HEADERS.at]) ?? "";
    const nonce = one(headers[IMAGE_SIGNATURE_HEADERS.nonce]) ?? "";
    if (!/^[0-9a-f]{64}$/.test(node) || !this.isGroupNode(node)) return null;
    const refused = this.checker.check(
      { tag: TAG, fields: [method.toUpperCase(), url, at, nonce], at: /^\d+$/.test(at) ? Number(at) : NaN, replayKey: /^[0-9a-f]{32}$/.test(nonce) ? nonce : null, proof: sig },
      nodeKeyAuthenticator(node),
      this.now(),
    );
    if (refused) throw new ImageRequestRefused(REFUSALS[refused]);
    return node;
  }
}
