import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { ErrorReply } from "../../../api/common.js";
import { SystemConfig, TokenRotate, TokenRotateReply } from "../../../api/host.js";
import { GpuList, UsageQuery, UsageReport } from "../../../api/host-gpu.js";
import { usageCsv } from "../../../rental/usage.js";
import { ApiError } from "../../../api/errors.js";
import type { AppDeps } from "../../deps.js";

/** Seed 000 `/common/...`: this host's config; batu's token rotation. */
export const commonRoutes: FastifyPluginAsyncTypebox<{ deps: AppDeps }> = async (app, { deps }) => {
  app.get(
    "/common/config",
    {
      schema: {
        summary: "This host's conf/config.json",
        tags: ["host"],
        response: { 200: SystemConfig, 401: ErrorReply },
      },
    },
    async () => deps.systemConfig(),
  );

  const usage = deps.usage;
  if (usage) {
    app.get(
      "/common/usage",
      {
        schema: {
          summary: "Each renter's use of this node over a period: VM-hours, vCPU-hours, memory GiB-hours, GPU-hours (json or csv)",
          description: "From the stretches each VM's QEMU ran, kept after the VM is deleted; a stretch still running counts up to `to`.",
          tags: ["host"],
          querystring: UsageQuery,
          response: { 200: UsageReport, 400: ErrorReply, 401: ErrorReply },
        },
      },
      async (req, reply) => {
        const to = req.query.to ? new Date(req.query.to) : new Date();
        const from = req.query.from ? new Date(req.query.from) : new Date(to.getTime() - 30 * 86_400_000);
        if (!(from.getTime() < to.getTime())) throw new ApiError("bad_request", "from: must be before to");
        const lines = usage.report(from, to);
        if (req.query.format === "csv") return reply.type("text/csv; charset=utf-8").send(usageCsv(usage.nodeId, from, to, lines) as never);
        return {
          node_id: usage.nodeId,
          from: from.toISOString(),
          to: to.toISOString(),
          usage: lines.map((l) => ({ renter: l.renter, vm_hours: l.vmHours, vcpu_hours: l.vcpuHours, mem_gib_hours: l.memGibHours, gpu_hours: l.gpuHours })),
        };
      },
    );
  }

  const gpus = deps.gpus;
  if (gpus) {
    app.get(
      "/common/gpu/list",
      {
        schema: {
          summary: "This host's GPUs for passthrough: model, bus address, NUMA node, state (free, in use by which VM, unavailable and why)",
          tags: ["host"],
          response: { 200: GpuList, 401: ErrorReply },
        },
      },
      async () =>
        (await gpus()).map((g) => ({
          pci_address: g.address,
          vendor: g.vendor,
          model: g.model,
          memory_mib: g.memoryMiB,
          numa_node: g.numaNode,
          state: g.state,
          reason: g.reason,
          vm_id: g.vmId,
        })),
    );
  }

  const rotate = deps.rotateToken;
  if (rotate) {
    app.post(
      "/common/token/rotate",
      {
        schema: {
          summary: "Replace this host's admin or join token, at once and without a restart (what `batu token rotate` calls)",
          description:
            "A new random token is written to conf/admin.token, conf/join.token or conf/metrics.token (mode 0600, atomically) and is the " +
            "only one accepted from the next request on; the reply names the file, never the token. Rotating the join " +
            "token changes nothing for members that joined already (they sign with their node keys). On a master of a group of " +
            "masters (group_ha) the new token goes to etcd first and every master takes it at once.",
          tags: ["host"],
          body: TokenRotate,
          response: { 200: TokenRotateReply, 400: ErrorReply, 401: ErrorReply, 403: ErrorReply, 409: ErrorReply },
        },
      },
      async (req) => {
        let file: string;
        try {
          file = await rotate(req.body.token);
        } catch (e) {
          throw new ApiError("conflict", `the ${req.body.token} token cannot be replaced: ${(e as Error).message}`);
        }
        req.log.info({ kind: req.body.token }, "token rotated");
        return { message: "ok" as const, token: req.body.token, file };
      },
    );
  }
};
