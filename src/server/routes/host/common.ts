import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { ErrorReply } from "../../../api/common.js";
import { SystemConfig } from "../../../api/host.js";
import type { AppDeps } from "../../deps.js";

/** Seed 000 `/common/...`: this host's config. */
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
};
