import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { ErrorReply, OkReply } from "../../../api/common.js";
import { CordonBody, DrainReply, Maintenance } from "../../../api/host-maintenance.js";
import type { HostMaintenance } from "../../../host/maintenance.js";
import type { AppDeps } from "../../deps.js";

const view = (m: HostMaintenance): Maintenance => {
  const s = m.state;
  return { cordoned: s !== null, since: s?.since ?? null, reason: s?.reason ?? null, drained: s?.drained ?? false };
};

/** `/common/host/*`: the operator takes the host out of service for maintenance, and back (batu addition). */
export const maintenanceRoutes: FastifyPluginAsyncTypebox<{ deps: AppDeps; maintenance: HostMaintenance }> = async (app, { deps, maintenance }) => {
  app.get(
    "/common/host/maintenance",
    { schema: { summary: "Whether this host is cordoned or drained, since when and why", tags: ["host"], response: { 200: Maintenance, 401: ErrorReply } } },
    async () => view(maintenance),
  );

  app.post(
    "/common/host/cordon",
    {
      schema: {
        summary: "No VM starts here from now on (new tasks and stopped ones are refused, saying why); running ones go on",
        tags: ["host"],
        body: CordonBody,
        response: { 200: Maintenance, 400: ErrorReply, 401: ErrorReply },
      },
    },
    async (req) => {
      maintenance.cordon(req.body.reason ?? "");
      deps.log.info({ reason: req.body.reason ?? "" }, "host cordoned");
      return view(maintenance);
    },
  );

  app.post(
    "/common/host/drain",
    {
      schema: {
        summary: "Cordon, and shut every running VM down gracefully (each powered off after the shutdown timeout)",
        description: "The VMs stay, shut down: after uncordon, their renters (or the operator) start them again.",
        tags: ["host"],
        body: CordonBody,
        response: { 200: DrainReply, 400: ErrorReply, 401: ErrorReply },
      },
    },
    async (req) => {
      maintenance.cordon(req.body.reason ?? "", { drained: true });
      const stopping: string[] = [];
      const refused: { vm_id: string; message: string }[] = [];
      for (const vm of deps.vmQueries.list()) {
        if (!deps.vmQueries.isLive(vm.id)) continue;
        try {
          deps.vms.begin(vm.id, "shutdown");
          stopping.push(vm.id);
        } catch (e) {
          refused.push({ vm_id: vm.id, message: e instanceof Error ? e.message : String(e) });
        }
      }
      deps.log.info({ reason: req.body.reason ?? "", stopping: stopping.length, refused: refused.length }, "host drained");
      return { message: "ok" as const, maintenance: view(maintenance), stopping, refused };
    },
  );

  app.post(
    "/common/host/uncordon",
    { schema: { summary: "VMs may start here again", tags: ["host"], response: { 200: OkReply, 401: ErrorReply } } },
    async () => {
      maintenance.uncordon();
      deps.log.info("host uncordoned");
      return { message: "ok" as const };
    },
  );
};
