import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { ErrorReply, OkReply, StringEnum } from "../../../api/common.js";
import { ImageList, ImageName, ServerId, Transfer } from "../../../api/host-image.js";
import { ApiError } from "../../../api/errors.js";
import { ImageCenterError, type ImageCenter, type TransferState } from "../../../image/center.js";

const transferView = (t: TransferState) => ({ name: t.name, direction: t.direction, server: t.serverId, status: t.status, progress: t.fraction, error: t.error });

/** The image center's refusals as host API errors: a wrong field 400, a busy image 409. */
function apiErrorOf(e: unknown): unknown {
  if (!(e instanceof ImageCenterError)) return e;
  if (e.conflict) return new ApiError("conflict", e.message);
  return new ApiError(e.message.includes("not exist") ? "not_found" : "bad_request", `${e.field}: ${e.message}`);
}

async function guarded<T>(work: () => T | Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    throw apiErrorOf(e);
  }
}

/** The operator's image center (`batu image …`): the node's images, its servers', and transfers between them. */
export const imageRoutes: FastifyPluginAsyncTypebox<{ deps: { images: ImageCenter } }> = async (app, { deps }) => {
  const center = deps.images;
  const errors = { 400: ErrorReply, 401: ErrorReply, 404: ErrorReply, 409: ErrorReply };

  app.get(
    "/common/image/servers",
    { schema: { summary: "The image servers this node knows", tags: ["image"], response: { 200: Type.Object({ servers: Type.Array(Type.String()) }), 401: ErrorReply } } },
    async () => ({ servers: center.serverIds() }),
  );

  app.get(
    "/common/image/list",
    {
      schema: {
        summary: "The images of this node, or of an image server",
        tags: ["image"],
        querystring: Type.Object({ server: Type.Optional(ServerId) }, { additionalProperties: false }),
        response: { 200: ImageList, ...errors },
      },
    },
    async (req) =>
      guarded(async () => ({
        images: req.query.server
          ? (await center.listServer(req.query.server)).map((i) => ({ name: i.name, size_bytes: i.sizeBytes, ...(i.sha256 ? { sha256: i.sha256 } : {}) }))
          : center.listLocal(null).map((i) => ({ name: i.name, size_bytes: i.sizeBytes, owner: i.owner })),
      })),
  );

  const TransferBody = Type.Object({ server: ServerId, name: ImageName }, { additionalProperties: false });
  app.post(
    "/common/image/pull",
    { schema: { summary: "Bring an image from an image server (answers at once; /common/image/progress follows it)", tags: ["image"], body: TransferBody, response: { 200: Transfer, ...errors } } },
    async (req) => guarded(() => transferView(center.download(req.body.server, req.body.name))),
  );
  app.post(
    "/common/image/push",
    { schema: { summary: "Send an image of this node to an image server (answers at once)", tags: ["image"], body: TransferBody, response: { 200: Transfer, ...errors } } },
    async (req) => guarded(() => transferView(center.upload(req.body.server, req.body.name, null))),
  );

  const ProgressQuery = Type.Object({ name: ImageName, direction: StringEnum(["download", "upload"]) }, { additionalProperties: false });
  app.get(
    "/common/image/progress",
    { schema: { summary: "A transfer's state", tags: ["image"], querystring: ProgressQuery, response: { 200: Transfer, ...errors } } },
    async (req) =>
      guarded(() => {
        const t = center.progress(req.query.name, req.query.direction);
        if (!t) throw new ApiError("not_found", `name: no ${req.query.direction} of ${req.query.name} since the agent started`);
        return transferView(t);
      }),
  );
  app.post(
    "/common/image/stop",
    { schema: { summary: "Stop a transfer (a download resumes from where it stopped when pulled again)", tags: ["image"], body: ProgressQuery, response: { 200: OkReply, ...errors } } },
    async (req) =>
      guarded(async () => {
        await center.stop(req.body.name, req.body.direction);
        return { message: "ok" as const };
      }),
  );
  app.post(
    "/common/image/delete",
    {
      schema: {
        summary: "Delete an image of this node (refused while a VM boots from it or it is transferred)",
        tags: ["image"],
        body: Type.Object({ name: ImageName }, { additionalProperties: false }),
        response: { 200: OkReply, ...errors },
      },
    },
    async (req) =>
      guarded(async () => {
        await center.delete(req.body.name, null);
        return { message: "ok" as const };
      }),
  );
};
