import type { FastifyPluginAsync, FastifyRequest } from "fastify";
import { ok } from "../../../api/v1/envelope.js";
import { DbcRequest } from "../../../api/v1/request.js";
import { DATA_DISK_NAME } from "../../../disk/service.js";
import { FieldError } from "../../../vm/create-request.js";
import { formatGiB, GiB } from "../../../lib/units.js";
import type { V1Deps } from "./deps.js";
import { actingRenter } from "./target.js";
import { quotaFor } from "./quota.js";

type Req = FastifyRequest<{ Body: DbcRequest; Params: { id: string } }>;

const size = (bytes: number | null) => (bytes === null ? "" : formatGiB(bytes));

/** DBC's `size`: a JSON integer of GiB, > 0 (a string is refused as DBC's JSON_PARSE_INT refuses it). */
function sizeGiB(v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0 || v > 64 * 1024) throw new FieldError("size", "'size' is invalid");
  return v;
}

/** DBC's `disk`: a data disk's name. */
function diskName(v: unknown): string {
  if (v === undefined || v === null || v === "") throw new FieldError("disk", "'disk' is empty");
  if (typeof v !== "string" || (v !== "vda" && !DATA_DISK_NAME.test(v))) throw new FieldError("disk", `task have no disk:${String(v).slice(0, 16)}`);
  return v;
}

/**
 * DBC's `disk/*` (reference §4.3) on a renter's task, live on a running one (DBC wants it shut off).
 * `mount_dir` (a host directory in DBC) is accepted and ignored: every disk lives in the VM's folder.
 */
export const diskRoutes: FastifyPluginAsync<{ deps: V1Deps }> = async (app, { deps }) => {
  const { vmQueries: reads, disks } = deps;
  const task = (req: Req) => reads.getFor(actingRenter(req, deps), req.params.id);
  const quota = (req: Req) => quotaFor(req, deps, actingRenter(req, deps));
  const additional = (req: Req) => (req.body.additional ?? {}) as Record<string, unknown>;
  const schema = (summary: string, description: string) => ({ summary, description, tags: ["dbc"], body: DbcRequest });

  app.post("/disk/list/:id", { schema: schema("A task's disks", "`[{name, file, size}]`: vda, then its data disks; `file` is the file's name only.") }, async (req: Req) =>
    ok((await disks.list(task(req))).map((d) => ({ name: d.name, file: d.file, size: size(d.sizeBytes) }))),
  );

  app.post(
    "/disk/add/:id",
    {
      schema: schema(
        "Add a data disk",
        "additional: `size` (JSON integer, GiB). Named after the task's last disk (vdc after vdb). Hot-plugged into a running task: " +
          "the guest sees it at once. `mount_dir` (DBC's host directory) is ignored: disks live in the task's folder on the node.",
      ),
    },
    async (req: Req) => {
      const gib = sizeGiB(additional(req).size);
      const { name } = await disks.add(task(req).id, gib * GiB, quota(req));
      return ok({ name, size: size(gib * GiB) });
    },
  );

  app.post(
    "/disk/resize/:id",
    {
      schema: schema(
        "Grow a data disk",
        "additional: `disk` (vdb, …) and `size` (JSON integer, GiB): the disk grows BY size, as in DBC (not to it). Live on a " +
          "running task (the guest is told the new size; its file system is the guest's to grow). Never shrinks.",
      ),
    },
    async (req: Req) => {
      const a = additional(req);
      const name = diskName(a.disk);
      const gib = sizeGiB(a.size);
      const { sizeBytes } = await disks.resize(task(req).id, name, gib * GiB, quota(req));
      return ok({ name, size: size(sizeBytes) });
    },
  );

  app.post(
    "/disk/delete/:id",
    {
      schema: schema(
        "Delete a data disk",
        "additional: `disk`. vda is refused. A running task's disk is unplugged first, once its guest releases it (else refused, " +
          "nothing changed). The disk's file is deleted; an operator's data file is only detached.",
      ),
    },
    async (req: Req) => {
      const name = diskName(additional(req).disk);
      await disks.remove(task(req).id, name);
      return ok("ok");
    },
  );
};
