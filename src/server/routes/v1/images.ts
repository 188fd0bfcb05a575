import type { FastifyPluginAsync, FastifyRequest } from "fastify";
import { DbcError, ok } from "../../../api/v1/envelope.js";
import { DbcRequest } from "../../../api/v1/request.js";
import { ImageCenterError, type TransferDirection, type TransferState } from "../../../image/center.js";
import { formatGiB, percentText } from "../../../lib/units.js";
import type { V1Deps } from "./deps.js";
import { actingRenter } from "./target.js";

type Req = FastifyRequest<{ Body: DbcRequest }>;

/** DBC's progress answer: `{"status":"downloading","progress":"42%"}`, `{"status":"done","progress":"100%"}`. */
const progressView = (t: TransferState) => ({
  status: t.status,
  progress: percentText(t.fraction),
  ...(t.error ? { error: t.error } : {}),
});

/** An image center refusal in DBC's envelope: a wrong field is -25 (HTTP 400), a busy image errcode 1. */
function dbcErrorOf(e: unknown): unknown {
  if (!(e instanceof ImageCenterError)) return e;
  return e.conflict ? new DbcError(1, e.message, 200) : new DbcError(-25, e.message, 400);
}

/**
 * DBC's `images/*` (reference §4.5, seed 001 "Image Manage"). A call naming a node
 * (`peer_nodes_list[0]`) acts on that node's image cache for its renter; `images/servers` and an
 * image server's list (`images` with an empty node list and `additional.image_server`) answer from
 * this agent's configuration, as DBC's client answers them from its conf. DBC lets any renter of a
 * node delete any image there; batu lets a renter delete only its own (a snapshot it made), never
 * the operator's, never one a task boots from or one being transferred. `local_dir` (a host path in
 * DBC) is accepted and ignored: images go to the node's image cache.
 */
export const imageRoutes: FastifyPluginAsync<{ deps: V1Deps }> = async (app, { deps }) => {
  const center = deps.images;
  const additional = (req: Req) => (req.body.additional ?? {}) as Record<string, unknown>;
  const schema = (summary: string, description: string) => ({ summary, description, tags: ["dbc"], body: DbcRequest });
  /** Runs `work`, mapping the image center's refusals to DBC's envelope. */
  const guarded = async <T>(work: () => T | Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (e) {
      throw dbcErrorOf(e);
    }
  };
  const progress = (direction: TransferDirection) => async (req: Req) =>
    guarded(() => {
      actingRenter(req, deps);
      const t = center.progress(additional(req).image_filename, direction);
      if (!t) throw new DbcError(1, `image ${String(additional(req).image_filename)} is not ${direction === "download" ? "downloading" : "uploading"}`, 200);
      return ok(progressView(t));
    });
  const stop = (direction: TransferDirection) => async (req: Req) =>
    guarded(async () => {
      actingRenter(req, deps);
      await center.stop(additional(req).image_filename, direction);
      return ok("ok");
    });

  app.post("/images/servers", { schema: schema("The image servers this agent knows", "`{image_server: [id, …]}` from its configuration (`image_servers` in config.json; the group's master as `master`).") }, async () =>
    ok({ image_server: center.serverIds() }),
  );

  app.post(
    "/images",
    {
      schema: schema(
        "An image server's images, or a node's",
        "Empty `peer_nodes_list` with `additional.image_server`: that server's images. With a node id (and the renter's identity): " +
          "the images in that node's cache the renter may boot. `[{image_name, image_size}]`.",
      ),
    },
    async (req: Req) =>
      guarded(async () => {
        if (req.body.peer_nodes_list.length === 0) {
          const images = await center.listServer(additional(req).image_server);
          return ok(images.map((i) => ({ image_name: i.name, image_size: formatGiB(i.sizeBytes) })));
        }
        const renter = actingRenter(req, deps);
        return ok(center.listLocal(renter).map((i) => ({ image_name: i.name, image_size: formatGiB(i.sizeBytes) })));
      }),
  );

  app.post(
    "/images/download",
    {
      schema: schema(
        "Bring an image from an image server to the node",
        "additional: `image_server`, `image_filename` (`local_dir` ignored). Answers at once; `images/downloadprogress` follows it. " +
          "Verified by sha256 before the image is usable; a download stopped or cut resumes where it stopped when asked again.",
      ),
    },
    async (req: Req) =>
      guarded(() => {
        actingRenter(req, deps);
        center.download(additional(req).image_server, additional(req).image_filename);
        return ok("ok");
      }),
  );

  app.post(
    "/images/upload",
    {
      schema: schema(
        "Send a node's image to an image server",
        "additional: `image_filename`, `image_server`. The renter may send the operator's images and its own; the server never " +
          "overwrites an image of that name. Answers at once; `images/uploadprogress` follows it.",
      ),
    },
    async (req: Req) =>
      guarded(() => {
        const renter = actingRenter(req, deps);
        center.upload(additional(req).image_server, additional(req).image_filename, renter);
        return ok("ok");
      }),
  );

  app.post("/images/downloadprogress", { schema: schema("A download's progress", '`{"status":"downloading","progress":"42%"}`, then `done`.') }, progress("download"));
  app.post("/images/uploadprogress", { schema: schema("An upload's progress", '`{"status":"uploading","progress":"42%"}`, then `done`.') }, progress("upload"));
  app.post("/images/download_stop", { schema: schema("Stop a download", "What arrived stays, for a later resume.") }, stop("download"));
  app.post("/images/upload_stop", { schema: schema("Stop an upload", "The server keeps what arrived, for a later resume.") }, stop("upload"));

  app.post(
    "/images/delete",
    { schema: schema("Delete an image of the node", "A renter deletes only its own images; never one a task boots from or one being transferred.") },
    async (req: Req) =>
      guarded(async () => {
        await center.delete(additional(req).image_filename, actingRenter(req, deps));
        return ok("ok");
      }),
  );
};
