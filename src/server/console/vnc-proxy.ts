import { connect } from "node:net";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { WebSocket } from "ws";
import { ErrorReply } from "../../api/common.js";
import { ApiError } from "../../api/errors.js";
import { VmConsoleRequest, VmConsoleSocketQuery, VmConsoleTicket } from "../../api/host-console.js";
import type { VmQueries } from "../../vm/queries.js";
import { ConsoleTickets, TICKET_TTL_MS } from "./tickets.js";

export const CONSOLE_SOCKET_PATH = "/common/vm/console/ws";

/** Frames queued to the browser before the VNC side is paused (a slow browser never grows our memory). */
const MAX_QUEUED_FRAMES = 64;

declare module "fastify" {
  interface FastifyRequest {
    /** The VM a console WebSocket's ticket was issued for (set once the ticket is redeemed). */
    consoleVmId?: string;
  }
}

/**
 * The browser's VNC console: `POST /common/vm/console` (admin token) issues a single-use ticket, and
 * `GET /common/vm/console/ws?ticket=…` upgrades to a WebSocket that carries the VM's RFB stream to its
 * VNC server (QEMU's, on the forward host at the VM's VNC port). The VNC server keeps its password:
 * the ticket's reply hands it to the operator, whose noVNC answers the server's challenge itself.
 */
export const vncProxyRoutes: FastifyPluginAsyncTypebox<{ deps: { vmQueries: VmQueries; forwardHost: string; tickets?: ConsoleTickets } }> = async (
  app,
  { deps },
) => {
  const tickets = deps.tickets ?? new ConsoleTickets();

  app.post(
    "/common/vm/console",
    {
      schema: {
        summary: "A ticket for a VM's console over a WebSocket (the web console's VNC)",
        description:
          `Single use, valid ${TICKET_TTL_MS / 1000} s. Open \`${CONSOLE_SOCKET_PATH}?ticket=<ticket>\` (binary frames: ` +
          "the RFB stream of the VM's VNC server) and give the VNC server the password. 409 while the VM does not run.",
        tags: ["vm"],
        body: VmConsoleRequest,
        response: { 200: VmConsoleTicket, 400: ErrorReply, 401: ErrorReply, 404: ErrorReply, 409: ErrorReply },
      },
    },
    async (req) => {
      const vm = deps.vmQueries.get(req.body.vm_id);
      if (vm.status !== "running") throw new ApiError("conflict", `vm_id: ${vm.id} is ${vm.status}, not running: its console is off`);
      return { ticket: tickets.issue(vm.id), path: CONSOLE_SOCKET_PATH, password: vm.spec.vncPassword, expires_in_s: TICKET_TTL_MS / 1000 };
    },
  );

  app.get(
    CONSOLE_SOCKET_PATH,
    {
      websocket: true,
      schema: { querystring: VmConsoleSocketQuery },
      // The ticket is the credential (a browser's WebSocket carries no header); the stream is the VM's
      // screen and keyboard, so another host gets it over TLS only.
      config: { auth: "public", transport: "tls" },
      preHandler: async (req) => {
        const vmId = tickets.redeem((req.query as { ticket: string }).ticket);
        if (vmId === undefined) throw new ApiError("unauthorized", "ticket: unknown, used or expired (POST /common/vm/console issues one)");
        req.consoleVmId = vmId;
      },
    },
    (socket, req) => pipeToVnc(socket, deps, req.consoleVmId!),
  );
};

/** Carries binary frames between the browser's WebSocket and the VM's VNC server, until either side ends. */
function pipeToVnc(socket: WebSocket, deps: { vmQueries: VmQueries; forwardHost: string }, vmId: string): void {
  const vm = deps.vmQueries.find(vmId);
  if (!vm || vm.status !== "running") {
    socket.close(1011, "the VM does not run");
    return;
  }
  const vnc = connect({ host: deps.forwardHost, port: vm.spec.ports.vnc });
  let queued = 0;
  vnc.on("data", (chunk: Buffer) => {
    queued++;
    if (queued >= MAX_QUEUED_FRAMES) vnc.pause();
    socket.send(chunk, { binary: true }, () => {
      queued--;
      if (queued < MAX_QUEUED_FRAMES / 4 && vnc.isPaused()) vnc.resume();
    });
  });
  socket.on("message", (data: Buffer | ArrayBuffer | Buffer[]) => {
    vnc.write(Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer));
  });
  vnc.on("error", () => socket.close(1011, "the VM's VNC server is unreachable"));
  vnc.on("close", () => socket.readyState === socket.OPEN && socket.close(1000, "the VM's VNC server closed"));
  socket.on("close", () => vnc.destroy());
  socket.on("error", () => vnc.destroy());
}
