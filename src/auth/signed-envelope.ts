/**
 * The one signed envelope of calls between agents (forwarded renter calls, heartbeats, join proofs):
 * a message made of a domain tag and a JSON array of fields, a time, a replay key and a proof. Every
 * check happens here, in one order: time within the skew bound, replay key well-formed, replay key
 * unseen, proof valid; only then is the replay key recorded.
 *
 * The proof comes from a pluggable `Authenticator`: an sr25519 node key (`nodeKeyAuthenticator`) or a
 * shared secret (`hmacAuthenticator`), so a per-member MAC key can stand beside node signatures.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { hexToU8a, u8aToHex } from "@polkadot/util";
import { sr25519Verify } from "@polkadot/util-crypto";
import type { ReplayWindow } from "./replay-store.js";

/** Makes and checks proofs over envelope messages. */
export interface Authenticator {
  /** The proof over `message`, in its wire form (hex). Throws when this side holds no secret. */
  sign(message: string): string;
  /** Whether `proof` is this key's proof over `message`; false for anything malformed, never throws. */
  verify(message: string, proof: string): boolean;
}

/**
 * The bytes a proof covers: a domain tag (so a proof made for one purpose never passes for another)
 * and the fields as a JSON array (a fixed order, never an object's key order).
 */
export function envelopeMessage(tag: string, fields: readonly unknown[]): string {
  return `${tag}\n${JSON.stringify(fields)}`;
}

/**
 * An sr25519 node key: `nodeId` is its public key (64 hex, no `0x`). Proofs are `0x`-hex signatures.
 * Without `sign` (the secret lives elsewhere) it can only verify.
 */
export function nodeKeyAuthenticator(nodeId: string, sign?: (message: string) => Uint8Array): Authenticator {
  return {
    sign: (message) => {
      if (!sign) throw new Error(`no secret key for node ${nodeId}: this authenticator only verifies`);
      return u8aToHex(sign(message));
    },
    verify: (message, proof) => {
      try {
        return sr25519Verify(message, hexToU8a(proof), hexToU8a("0x" + nodeId));
      } catch {
        // Malformed hex or key: not a valid signature.
        return false;
      }
    },
  };
}

const HEX_MAC = /^[0-9a-f]{64}$/;

/** HMAC-SHA256 keyed by a shared secret; proofs are 64 lower-case hex characters, compared in constant time. */
export function hmacAuthenticator(secret: string | Buffer): Authenticator {
  const sign = (message: string) => createHmac("sha256", secret).update(message).digest("hex");
  return {
    sign,
    verify: (message, proof) => HEX_MAC.test(proof) && timingSafeEqual(Buffer.from(proof, "hex"), Buffer.from(sign(message), "hex")),
  };
}

/** The proof of an envelope: `key`'s proof over `envelopeMessage(tag, fields)`. */
export function sealEnvelope(key: Authenticator, tag: string, fields: readonly unknown[]): string {
  return key.sign(envelopeMessage(tag, fields));
}

/** A received envelope, as its checker reads it. */
export interface Envelope<K> {
  tag: string;
  fields: readonly unknown[];
  /** The sender's clock, ms since the epoch (NaN when unreadable: refused as skewed). */
  at: number;
  /** What makes it single-use (a nonce, a counter); null when the sender's one is malformed. */
  replayKey: K | null;
  proof: string;
}

/** Why an envelope is refused, in the order the checks run. */
export type EnvelopeRefusal = "skew" | "malformed" | "replayed" | "proof";

/** Checks envelopes of one kind: one skew bound, one replay store. */
export class EnvelopeChecker<K> {
  constructor(
    /** An envelope further than this from the checker's clock, either way, is refused. */
    readonly maxSkewMs: number,
    private readonly replays: ReplayWindow<K>,
  ) {}

  /** Null when the envelope holds (its replay key is then recorded), else the first reason it does not. */
  check(envelope: Envelope<K>, key: Authenticator, now: Date): EnvelopeRefusal | null {
    if (!Number.isFinite(envelope.at) || Math.abs(now.getTime() - envelope.at) > this.maxSkewMs) return "skew";
    if (envelope.replayKey === null) return "malformed";
    if (this.replays.seen(envelope.replayKey, now)) return "replayed";
    if (!key.verify(envelopeMessage(envelope.tag, envelope.fields), envelope.proof)) return "proof";
    // Single-threaded: nothing used the key between `seen` and here.
    this.replays.consume([envelope.replayKey], now);
    return null;
  }
}
