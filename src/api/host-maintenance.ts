/** `/common/host/*`: a host's maintenance (cordon, drain, uncordon). */
import { Type, type Static } from "@sinclair/typebox";

export const Maintenance = Type.Object(
  {
    cordoned: Type.Boolean({ description: "Whether no VM starts here (new tasks and stopped ones refused); running ones go on unless drained" }),
    since: Type.Union([Type.String(), Type.Null()], { description: "ISO 8601; null when not cordoned" }),
    reason: Type.Union([Type.String(), Type.Null()], { description: "The operator's words for renters" }),
    drained: Type.Boolean({ description: "Whether the running VMs were shut down too" }),
  },
  { $id: "Maintenance" },
);
export type Maintenance = Static<typeof Maintenance>;

export const CordonBody = Type.Object(
  { reason: Type.Optional(Type.String({ maxLength: 200, description: "What is done, until when: renters see it in refusals and the node's info" })) },
  { additionalProperties: false },
);
export type CordonBody = Static<typeof CordonBody>;

export const DrainReply = Type.Object(
  {
    message: Type.Literal("ok"),
    maintenance: Maintenance,
    stopping: Type.Array(Type.String(), { description: "The VMs a graceful shutdown began on (they power off after the shutdown timeout)" }),
    refused: Type.Array(Type.Object({ vm_id: Type.String(), message: Type.String() }), { description: "VMs whose shutdown could not begin (busy): drain again" }),
  },
  { $id: "DrainReply" },
);
export type DrainReply = Static<typeof DrainReply>;
