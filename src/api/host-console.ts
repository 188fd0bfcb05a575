/**
 * The web console's own endpoints (batu addition): a ticket for a VM's VNC console over a WebSocket.
 */
import { Type, type Static } from "@sinclair/typebox";

const VmId = Type.String({ pattern: "^[A-Za-z0-9_-]{1,64}$" });

/** `POST /common/vm/console`: ask for a ticket to VM `vm_id`'s console. */
export const VmConsoleRequest = Type.Object({ vm_id: VmId }, { additionalProperties: false, $id: "VmConsoleRequest" });
export type VmConsoleRequest = Static<typeof VmConsoleRequest>;

export const VmConsoleTicket = Type.Object(
  {
    ticket: Type.String({ description: "Single use, valid for `expires_in_s`: the query parameter `ticket` of the WebSocket" }),
    path: Type.String({ description: "Where to open the WebSocket (binary frames carry the VM's RFB/VNC stream)", examples: ["/common/vm/console/ws"] }),
    password: Type.String({ description: "The VM's VNC password, which the VNC server itself still asks for" }),
    expires_in_s: Type.Integer(),
  },
  { $id: "VmConsoleTicket" },
);
export type VmConsoleTicket = Static<typeof VmConsoleTicket>;

/** `GET /common/vm/console/ws?ticket=…`: the WebSocket upgrade, authenticated by its ticket alone. */
export const VmConsoleSocketQuery = Type.Object(
  { ticket: Type.String({ minLength: 1, maxLength: 128, description: "A ticket from POST /common/vm/console" }) },
  { additionalProperties: false },
);
