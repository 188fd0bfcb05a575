/**
 * Symmetric keys between a master and each member, so heartbeats and forwarded calls are proven by a
 * MAC (microseconds) rather than an sr25519 signature per message (a millisecond each way). The node
 * keys stay the root of trust: a key is agreed in an exchange both sides sign with them.
 *
 * The exchange (`POST /master/group/session`): the member sends a fresh X25519 public key, signed by
 * its node key; the master answers with its own fresh X25519 public key and a key id, signed by its
 * node key over both public keys. Each side derives the same key, HKDF-SHA256 over the X25519 secret,
 * salted with both public keys and bound to the member and the key id. Neither private key is kept:
 * the key of one exchange cannot be found again from anything stored or sent (forward secrecy).
 *
 * Keys live in memory only. A restart on either side loses them: the member's next heartbeat is
 * refused with `UNKNOWN_SESSION`, it opens a new session and beats again. The member renews its key
 * after `SESSION_TTL_MS`; the previous key stays good for `SESSION_GRACE_MS`, for calls in flight.
 */
import { createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes, type KeyObject } from "node:crypto";
import { hmacAuthenticator, type Authenticator } from "../auth/signed-envelope.js";

/** A member opens a new session after this long (the master keeps a key a grace period longer). */
export const SESSION_TTL_MS = 60 * 60_000;
/** How long a renewed session's previous key still proves messages (calls in flight at the switch). */
export const SESSION_GRACE_MS = 5 * 60_000;

/** The words by which a refusal tells a member its key is unknown (the master restarted): open a new session. */
export const UNKNOWN_SESSION = "unknown session key";

export const SESSION_TAG = "batu-group-session/1";
export const SESSION_REPLY_TAG = "batu-group-session-reply/1";
const KEY_INFO = "batu-group-mac/1";

/** DER prefix of an X25519 public key (SubjectPublicKeyInfo) before its 32 raw bytes. */
const X25519_SPKI_PREFIX = Buffer.from("302a300506032b656e032100", "hex");
const RAW_KEY = /^[0-9a-f]{64}$/;

/** One side's fresh X25519 key pair for one exchange; its public half as 64 hex characters. */
export interface EphemeralKey {
  publicHex: string;
  privateKey: KeyObject;
}

export function ephemeralKey(): EphemeralKey {
  const { publicKey, privateKey } = generateKeyPairSync("x25519");
  const der = publicKey.export({ format: "der", type: "spki" });
  return { publicHex: der.subarray(X25519_SPKI_PREFIX.length).toString("hex"), privateKey };
}

/** Whether `hex` is an X25519 public key as the exchange sends it. */
export const isRawKey = (hex: string): boolean => RAW_KEY.test(hex);

/**
 * The key both sides derive: `own` is this side's private key, `peerHex` the other's public key.
 * `memberKeyHex` and `masterKeyHex` in that order whichever side computes it.
 */
export function deriveSessionKey(own: KeyObject, peerHex: string, ids: { memberNodeId: string; keyId: string; memberKeyHex: string; masterKeyHex: string }): Buffer {
  const peer = createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, Buffer.from(peerHex, "hex")]), format: "der", type: "spki" });
  const shared = diffieHellman({ privateKey: own, publicKey: peer });
  const salt = Buffer.from(ids.memberKeyHex + ids.masterKeyHex, "hex");
  return Buffer.from(hkdfSync("sha256", shared, salt, `${KEY_INFO}\n${ids.memberNodeId}\n${ids.keyId}`, 32));
}

export const newKeyId = (): string => randomBytes(8).toString("hex");

interface Held {
  id: string;
  key: Authenticator;
  /** ms since the epoch: when it was agreed, and after when it proves nothing. */
  agreedAt: number;
  expiresAt: number;
}

/**
 * The session keys this agent holds, by the peer's node id: on a master, one per member; on a member,
 * the one with its master. Each peer has a current key and, for a grace period after a renewal, the
 * previous one.
 */
export class SessionKeys {
  private readonly byPeer = new Map<string, { current: Held; previous?: Held }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Holds a new key with `peer`: it becomes the current one; the one before it stays for the grace period. */
  hold(peer: string, id: string, key: Buffer, ttlMs: number = SESSION_TTL_MS + SESSION_GRACE_MS): void {
    const at = this.now();
    const before = this.byPeer.get(peer)?.current;
    const current: Held = { id, key: hmacAuthenticator(key), agreedAt: at, expiresAt: at + ttlMs };
    const previous = before && { ...before, expiresAt: Math.min(before.expiresAt, at + SESSION_GRACE_MS) };
    this.byPeer.set(peer, previous ? { current, previous } : { current });
  }

  /** The key with `peer` named `id`, while it is good; undefined for an unknown or expired one. */
  get(peer: string, id: string): Authenticator | undefined {
    const held = this.byPeer.get(peer);
    const match = held?.current.id === id ? held.current : held?.previous?.id === id ? held.previous : undefined;
    return match && match.expiresAt > this.now() ? match.key : undefined;
  }

  /** The current key with `peer` (id and authenticator), while it is good. */
  current(peer: string): { id: string; key: Authenticator } | undefined {
    const held = this.byPeer.get(peer)?.current;
    return held && held.expiresAt > this.now() ? { id: held.id, key: held.key } : undefined;
  }

  /** When the current key with `peer` was agreed (ms since the epoch), for renewals; undefined: none. */
  agreedAt(peer: string): number | undefined {
    return this.byPeer.get(peer)?.current.agreedAt;
  }

  forget(peer: string): void {
    this.byPeer.delete(peer);
  }
}
