/**
 * The operator's view of a node's GPUs and of what its renters used (host API, admin token):
 * `GET /common/gpu/list` and `GET /common/usage`.
 */
import { Type, type Static } from "@sinclair/typebox";

/** `GET /common/usage` query: the period (default: the last 30 days up to now) and the form. */
export const UsageQuery = Type.Object(
  {
    from: Type.Optional(Type.String({ format: "date-time", description: "Start of the period (ISO 8601); default 30 days before `to`" })),
    to: Type.Optional(Type.String({ format: "date-time", description: "End of the period (ISO 8601); default now" })),
    format: Type.Optional(Type.Union([Type.Literal("json"), Type.Literal("csv")], { description: "json (default) or csv" })),
  },
  { additionalProperties: false },
);

/** `GET /common/usage`: each renter's use of this node over the period. */
export const UsageReport = Type.Object(
  {
    node_id: Type.String(),
    from: Type.String(),
    to: Type.String(),
    usage: Type.Array(
      Type.Object({
        renter: Type.Union([Type.String(), Type.Null()], { description: "The renter; null for the operator's own VMs" }),
        vm_hours: Type.Number(),
        vcpu_hours: Type.Number(),
        mem_gib_hours: Type.Number(),
        gpu_hours: Type.Number(),
      }),
    ),
  },
  { $id: "UsageReport" },
);
export type UsageReport = Static<typeof UsageReport>;

/** `GET /common/gpu/list`: the host's GPUs for passthrough, and which VM holds each. */
export const GpuList = Type.Array(
  Type.Object({
    pci_address: Type.String({ description: "Function 0 of the GPU's slot (the slot's other functions go with it)", examples: ["0000:1b:00.0"] }),
    vendor: Type.String(),
    model: Type.String(),
    memory_mib: Type.Union([Type.Integer(), Type.Null()]),
    numa_node: Type.Union([Type.Integer(), Type.Null()]),
    state: Type.Union([Type.Literal("free"), Type.Literal("in use"), Type.Literal("unavailable")]),
    reason: Type.Union([Type.String(), Type.Null()], { description: "Why it cannot be passed through (unavailable)" }),
    vm_id: Type.Union([Type.String(), Type.Null()], { description: "The VM holding it (in use)" }),
  }),
  { $id: "GpuList" },
);
export type GpuList = Static<typeof GpuList>;
