/**
 * A member's rental terms in the master's heartbeat answer (group/rental-terms.ts): each renter's end,
 * under the first protocol's signature; and, under a second signature, what each grant gives (a
 * master of the earlier version sends neither `limits`, `wallets` nor `grants_signature`).
 */
import { Type, type Static } from "@sinclair/typebox";

/** A grant's limit as the terms carry it: a whole number of at least 1, or null for none. */
const NullableCount = Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]);

export const SignedRentalTerms = Type.Object(
  {
    renters: Type.Array(
      Type.Object(
        {
          renter: Type.String({ minLength: 1, maxLength: 128 }),
          ends_at: Type.String({ format: "date-time", description: "When the renter's use of the member ends or ended (UTC)" }),
          limits: Type.Optional(
            Type.Object(
              {
                gpus: NullableCount,
                cpu_cores: NullableCount,
                mem_gib: NullableCount,
                disk_gib: NullableCount,
                disk_iops: NullableCount,
                disk_mbps: NullableCount,
                net_mbit: NullableCount,
              },
              { additionalProperties: false, description: "What the renter's latest grant of the member gives (null: the whole node, no cap); covered by grants_signature" },
            ),
          ),
          wallets: Type.Optional(
            Type.Array(Type.String({ maxLength: 128 }), { maxItems: 100, description: "A multisig renter's wallets; covered by grants_signature" }),
          ),
        },
        { additionalProperties: false },
      ),
      { maxItems: 1000 },
    ),
    signature: Type.String({ pattern: "^0x[0-9a-f]{128}$", description: "sr25519 signature of the master's node key over the renters and their ends, hex" }),
    grants_signature: Type.Optional(
      Type.String({ pattern: "^0x[0-9a-f]{128}$", description: "sr25519 signature of the master's node key over the renters, their ends, limits and wallets (absent from a master of the earlier version)" }),
    ),
  },
  { additionalProperties: false },
);
export type SignedRentalTerms = Static<typeof SignedRentalTerms>;
