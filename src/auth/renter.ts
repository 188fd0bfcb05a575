/**
 * Who rents: one wallet, or a multisig set of wallets with its threshold. Every renter has a stable
 * `renterId`, the owner of its tasks: the wallet's canonical SS58 address, or the multisig account's
 * address derived as Substrate's `pallet_multisig` derives it (the account DBC checks rentals against).
 */
import { createKeyMulti, encodeAddress } from "@polkadot/util-crypto";
import { canonicalWallet, SS58_PREFIX, walletPublicKey } from "./signature.js";

/** How a request proved the identity: its own signature(s), or a session id handed out by the renter. */
export type RenterVia = "signature" | "session";

/** A renter's identity: what a rental is granted to and what owns tasks (`renterId`). */
export type RenterIdentity =
  | { kind: "wallet"; renterId: string; wallet: string }
  | { kind: "multisig"; renterId: string; wallets: string[]; threshold: number };

/** An authorized renter: its identity and how this request proved it. */
export type Renter = RenterIdentity & { via: RenterVia };

/** A renter as the operator names it when granting: `{wallet}` or `{multisig: {wallets, threshold}}`. */
export type RenterSpec = { wallet: string } | { multisig: { wallets: string[]; threshold: number | string } };

/** Most signatories a multisig may have (Substrate's usual `MaxSignatories`). */
export const MAX_MULTISIG_WALLETS = 100;

/** A renter spec that cannot be a renter; `field` names the offending input (`wallet`, `multisig_accounts.threshold`). */
export class RenterSpecError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = "RenterSpecError";
  }
}

/** `atoi` as DBC reads `threshold`: leading digits, else 0. Numbers are taken as they are. */
export function parseThreshold(value: number | string): number {
  if (typeof value === "number") return Number.isInteger(value) ? value : 0;
  const m = /^\s*\+?(\d{1,6})/.exec(value);
  return m ? Number(m[1]) : 0;
}

/** The multisig account address of a set of wallets (any order) and a threshold. */
export function multisigAccount(wallets: readonly string[], threshold: number): string {
  const keys = wallets.map((w) => {
    const key = walletPublicKey(w);
    if (!key) throw new Error(`not a wallet: ${w}`);
    return key;
  });
  return multisigAccountOfKeys(keys, threshold);
}

/** `multisigAccount` of keys already decoded. */
export function multisigAccountOfKeys(keys: readonly Uint8Array[], threshold: number): string {
  return encodeAddress(createKeyMulti([...keys], threshold), SS58_PREFIX);
}

/**
 * Checks and normalises a multisig set: canonical addresses, distinct, 2..100 wallets, threshold
 * 1..wallets. Returns the wallets in the order given.
 */
export function normalizeMultisig(
  wallets: readonly unknown[],
  thresholdInput: number | string,
  field = "multisig_accounts",
): { wallets: string[]; threshold: number } {
  if (wallets.length < 2) throw new RenterSpecError(`${field}.wallets`, "needs at least 2 wallets");
  if (wallets.length > MAX_MULTISIG_WALLETS) {
    throw new RenterSpecError(`${field}.wallets`, `has more than ${MAX_MULTISIG_WALLETS} wallets`);
  }
  const canonical = wallets.map((w, i) => {
    const c = canonicalWallet(w);
    if (!c) throw new RenterSpecError(`${field}.wallets[${i}]`, "is not an SS58 address or a 64-hex public key");
    return c;
  });
  const dup = canonical.findIndex((w, i) => canonical.indexOf(w) !== i);
  if (dup >= 0) throw new RenterSpecError(`${field}.wallets[${dup}]`, "is listed twice");
  const threshold = parseThreshold(thresholdInput);
  if (threshold < 1 || threshold > canonical.length) {
    throw new RenterSpecError(`${field}.threshold`, `must be between 1 and ${canonical.length} (the number of wallets)`);
  }
  return { wallets: canonical, threshold };
}

/** The renter a spec names, checked and canonical; throws RenterSpecError naming the bad field. */
export function renterFromSpec(spec: RenterSpec): RenterIdentity {
  if ("wallet" in spec) {
    const wallet = canonicalWallet(spec.wallet);
    if (!wallet) throw new RenterSpecError("wallet", "is not an SS58 address or a 64-hex public key");
    return { kind: "wallet", renterId: wallet, wallet };
  }
  const { wallets, threshold } = normalizeMultisig(spec.multisig.wallets, spec.multisig.threshold);
  return { kind: "multisig", renterId: multisigAccount(wallets, threshold), wallets, threshold };
}

/** Public keys allowed to sign for a renter: its wallet, or every wallet of its multisig set. */
export function renterSigners(renter: RenterIdentity): Uint8Array[] {
  const wallets = renter.kind === "wallet" ? [renter.wallet] : renter.wallets;
  return wallets.map((w) => walletPublicKey(w)).filter((k): k is Uint8Array => k !== undefined);
}
