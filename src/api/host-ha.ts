/** `conf/config.json` `group_ha`: a master that shares its group with other masters through etcd. */
import { Type, type Static } from "@sinclair/typebox";

export const GroupHaConfig = Type.Object(
  {
    etcd_endpoints: Type.Array(Type.String({ pattern: "^https?://[^\\s/]+$", maxLength: 256 }), {
      minItems: 1,
      maxItems: 16,
      description: "The etcd cluster holding the group's shared state (members, rentals, sessions, nonces, LAN registry), e.g. http://10.0.0.9:2379",
    }),
    service_address: Type.Optional(
      Type.String({
        pattern: "^\\d+\\.\\d+\\.\\d+\\.\\d+/\\d{1,2}$",
        description: "The group's one address (ip/prefix), held by the leading master and announced by gratuitous ARP; renters and members use it",
      }),
    ),
    service_interface: Type.Optional(Type.String({ pattern: "^[A-Za-z0-9_.-]{1,15}$", description: "The LAN interface the service address goes on (default eth0)" })),
    etcd_ca_file: Type.Optional(
      Type.String({ minLength: 1, maxLength: 4096, description: "With https endpoints: the CA certificate (PEM) etcd's certificate must chain to; relative to conf/" }),
    ),
    etcd_cert_file: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: "This master's client certificate for etcd (PEM; etcd's --client-cert-auth); relative to conf/" })),
    etcd_key_file: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: "Its private key (PEM, kept 0600); relative to conf/" })),
    lease_ttl_s: Type.Optional(
      Type.Integer({ minimum: 2, maximum: 60, description: "Seconds a dead leader keeps the lead before another master takes it (default 5)" }),
    ),
  },
  { additionalProperties: false },
);
export type GroupHaConfig = Static<typeof GroupHaConfig>;
