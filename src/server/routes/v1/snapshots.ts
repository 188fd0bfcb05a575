import type { FastifyPluginAsync, FastifyRequest } from "fastify";
import { DbcError, ok } from "../../../api/v1/envelope.js";
import { DbcRequest } from "../../../api/v1/request.js";
import type { Snapshot } from "../../../snapshot/service.js";
import type { V1Deps } from "./deps.js";
import { actingRenter } from "./target.js";
import { dbcTime } from "./task-view.js";

type Req = FastifyRequest<{ Body: DbcRequest; Params: { id: string; name?: string } }>;

/** A snapshot in DBC's shape (SnapshotInfo): `snapshot_file` is the image `tasks/start` boots it by. */
const view = (s: Snapshot) => ({
  snapshot_name: s.name,
  description: s.description,
  snapshot_file: s.imageName,
  create_time: dbcTime(s.createdAt),
  status: s.status,
  disks: ["vda", ...s.dataDisks.map((d) => d.name)],
});

const text = (v: unknown): string => (typeof v === "string" ? v : v === undefined || v === null ? "" : String(v));

/**
 * DBC's `snapshot/*` (reference §4.4) on a renter's task, live on a running one (DBC wants it shut
 * off). A snapshot is a new image of the node that only this renter's tasks boot.
 */
export const snapshotRoutes: FastifyPluginAsync<{ deps: V1Deps }> = async (app, { deps }) => {
  const { vmQueries: reads, snapshots } = deps;
  const task = (req: Req) => reads.getFor(actingRenter(req, deps), req.params.id);
  const schema = (summary: string, description: string) => ({ summary, description, tags: ["dbc"], body: DbcRequest });

  app.post(
    "/snapshot/create/:id",
    {
      schema: schema(
        "Snapshot a task's system disk",
        "additional: `snapshot_name`, `desc`, `image_server`, and (batu) `disks`: data disks to hold too, e.g. `[\"vdb\"]`. " +
          "Answers at once with `ok` and an `operation_id` (its progress in `operations/<id>` and the event stream); the " +
          "snapshot lists as `creating` until complete. A running task is snapshotted live (copies of one instant while the " +
          "guest runs on, its filesystems frozen for that instant when its guest agent answers). The result is the image " +
          "`snapshot_file`, which only this renter's `tasks/start` may boot; `snapshot/restore` brings back the data disks it " +
          "holds. With `image_server` (one of `images/servers`) the image then goes up to that server (status `uploading`); " +
          "without, it is kept on the node.",
      ),
    },
    async (req: Req) => {
      const a = (req.body.additional ?? {}) as Record<string, unknown>;
      const name = text(a.snapshot_name);
      if (!name) throw new DbcError(-25, "snapshot_name is empty", 400);
      const disks = a.disks === undefined ? [] : a.disks;
      if (!Array.isArray(disks) || disks.some((d) => typeof d !== "string")) throw new DbcError(-25, "disks must be a list of disk names, e.g. [\"vdb\"]", 400);
      // DBC's image_server: the snapshot goes up there once made (an unknown one is refused now).
      const server = text(a.image_server);
      if (server && !deps.images.serverIds().includes(server)) throw new DbcError(-25, "image_server not exist", 400);
      const op = snapshots.begin(task(req).id, name, text(a.desc), disks as string[], server || undefined);
      const upload = server ? `to image server ${server} once made (status uploading meanwhile)` : "none asked: the snapshot is kept on the node";
      return { ...ok({ snapshot_name: name, status: "creating", upload }), operation_id: op.id };
    },
  );

  app.post("/snapshot/list/:id", { schema: schema("A task's snapshots", "DBC's fields; status none | creating | uploading.") }, async (req: Req) =>
    ok(snapshots.list(task(req).id).map(view)),
  );

  app.post("/snapshot/list/:id/:name", { schema: schema("One snapshot of a task", "DBC's fields, or `snapshot_name not exist`.") }, async (req: Req) => {
    const s = snapshots.get(task(req).id, req.params.name!);
    if (!s) throw new DbcError(1, "snapshot_name not exist", 200);
    return ok(view(s));
  });

  app.post(
    "/snapshot/restore/:id/:name",
    {
      schema: schema(
        "Restore a task to one of its snapshots (batu extension)",
        "The task must be shut off. Its system disk becomes the snapshot's again, and so does each data disk the snapshot " +
          "holds (what it wrote since is gone; other data disks are untouched), and it boots from the snapshot's image from " +
          "then on, so that snapshot stays while the task does.",
      ),
    },
    async (req: Req) => {
      await snapshots.restore(task(req).id, req.params.name!);
      return ok("ok");
    },
  );

  app.post("/snapshot/delete/:id/:name", { schema: schema("Delete a snapshot", "Its image too; refused while a task boots from it.") }, async (req: Req) => {
    await snapshots.delete(task(req).id, req.params.name!);
    return ok("ok");
  });
};
