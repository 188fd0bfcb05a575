/**
 * The renter domain's refusals. They know no HTTP: the host API maps RentalError to its statuses
 * (server/errors.ts) and the DBC API maps RenterRefusal to its errcodes (server/routes/v1/errors.ts).
 */

/** Why the rental ledger refuses: a bad input (the message names the field), a node rented to another, no such rental. */
export type RentalErrorReason = "invalid" | "rented" | "not_found";

export class RentalError extends Error {
  constructor(
    readonly reason: RentalErrorReason,
    message: string,
  ) {
    super(message);
    this.name = "RentalError";
  }
}

/**
 * Why a renter's request may not act, in DBC's words (the message is DBC's text): no usable identity
 * in the request (`wallet_sign and multisig_wallets all invalid: ...`), or `check authority failed: ...`:
 * `not_renter` when the rentals or sessions say no (the caller does not rent the node now, or its
 * session is not known), which a copy of them that trails its source (a follower of several masters)
 * may say for a moment after a grant; `denied` for the rest (a bad signature, a used nonce).
 */
export type RenterRefusalReason = "no_identity" | "denied" | "not_renter";

export class RenterRefusal extends Error {
  constructor(
    readonly reason: RenterRefusalReason,
    message: string,
  ) {
    super(message);
    this.name = "RenterRefusal";
  }
}
