import type { FastifyPluginAsync, FastifyRequest } from "fastify";
import { percentText } from "../../../lib/units.js";
import { DbcError, ok } from "../../../api/v1/envelope.js";
import { DbcRequest } from "../../../api/v1/request.js";
import { fromDbcCreate, publicIpField } from "./task-start.js";
import { formatNetworkFilters, parseNetworkFilters } from "../../../network/security-group.js";
import { FieldError } from "../../../vm/create-request.js";
import { portField } from "../fields.js";
import { parseCustomPorts, parseRdpPort, parseSshPort, parseVncPort } from "../../../network/port-spec.js";
import type { VmModify } from "../../../vm/modify.js";
import type { VmAction } from "../../../vm/state.js";
import type { V1Deps } from "./deps.js";
import { actingRenter } from "./target.js";
import { quotaFor } from "./quota.js";
import { lanForTask } from "./lan.js";
import { dbcTime, JSON_CONTENT_TYPE, TaskReplies } from "./task-view.js";
import { oneDataVersionDuring } from "../../../store/db.js";

type Req = FastifyRequest<{ Body: DbcRequest; Params: { id: string; verb?: string }; Querystring: Record<string, string> }>;

const ACTIONS: Record<string, VmAction> = {
  start: "start",
  shutdown: "shutdown",
  poweroff: "poweroff",
  stop: "poweroff",
  restart: "restart",
  reset: "reset",
  delete: "delete",
};
/** DBC caps a log reply at 100 lines (asking more gives 99) and 8 KiB. */
const MAX_LOG_LINES = 100;
const MAX_LOG_BYTES = 8 * 1024;

function positive(name: string, v: unknown): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new FieldError(name, `${name} is invalid`);
  return n;
}

/**
 * DBC's reading of an optional string field of `additional`: absent, null or "" means "no change"
 * (DBC's clients send every field, empty when unchanged).
 */
const given = (v: unknown): boolean => v !== undefined && v !== null && v !== "";

/**
 * `tasks/modify` additional → a VmModify, read as DBC's node reads it: empty fields change nothing,
 * a list given (even empty) replaces the stored one, and nothing to change is not an error.
 */
function modifyFrom(a: Record<string, unknown>): VmModify {
  const m: VmModify = {};
  if (given(a.new_ssh_port)) m.sshPort = portField(() => parseSshPort(a.new_ssh_port, "new_ssh_port"));
  if (given(a.new_rdp_port)) m.rdpPort = portField(() => parseRdpPort(a.new_rdp_port, "new_rdp_port"));
  if (given(a.new_vnc_port)) m.vncPort = portField(() => parseVncPort(a.new_vnc_port, "new_vnc_port"));
  if (a.new_custom_port !== undefined && a.new_custom_port !== null) {
    m.customPorts = portField(() => parseCustomPorts(a.new_custom_port, { field: "new_custom_port" }));
  }
  if (given(a.new_cpu_cores)) m.cores = positive("new_cpu_cores", a.new_cpu_cores);
  if (given(a.new_mem_size)) m.memoryMiB = positive("new_mem_size", a.new_mem_size) * 1024;
  if (given(a.new_gpu_count)) {
    const n = Number(a.new_gpu_count);
    if (!Number.isInteger(n) || n < 0) throw new FieldError("new_gpu_count", "new_gpu_count is invalid");
    m.gpuCount = n;
  }
  if (a.new_network_filters !== undefined && a.new_network_filters !== null) {
    m.networkFilters = formatNetworkFilters(parseNetworkFilters(a.new_network_filters, "new_network_filters"));
  }
  if (a.new_public_ip !== undefined && a.new_public_ip !== null) m.publicIp = publicIpField(a.new_public_ip, "new_public_ip");
  return m;
}

/** The host name the renter reached us by: where its forwarded ports are, unless forwards bind one address. */
function sshIp(req: FastifyRequest, forwardHost: string): string {
  if (forwardHost !== "0.0.0.0" && forwardHost !== "::") return forwardHost;
  return req.hostname.replace(/:\d+$/, "");
}

/** `tasks`: a renter's VMs, DBC's shapes and verbs, on the same VM service as the host API. */
export const taskRoutes: FastifyPluginAsync<{ deps: V1Deps }> = async (app, { deps }) => {
  const { vms, vmQueries: reads } = deps;
  const replies = new TaskReplies(reads);
  // A call its master forwarded was authenticated there (the rental ledger lives on the master).
  const renter = (req: Req) => actingRenter(req, deps);
  const schema = (summary: string, description?: string) => ({ summary, tags: ["dbc"], body: DbcRequest, ...(description ? { description } : {}) });

  // The two calls a renter's client polls: their rental, session and reply checks share one look at
  // the store's data_version (oneDataVersionDuring).
  app.post("/tasks", { schema: schema("The caller's tasks on the node") }, async (req: Req, reply) =>
    reply.type(JSON_CONTENT_TYPE).send(oneDataVersionDuring(() => replies.list(renter(req)))),
  );

  app.post(
    "/tasks/start",
    {
      schema: schema(
        "Create a task (VM)",
        "Answers at once with status `creating` and an `operation_id`; the task is running about a second later " +
          "(poll tasks/<id> or follow GET /api/v1/events). Values in `additional` may be strings (DBC) or numbers.",
      ),
    },
    async (req: Req) => {
      const owner = renter(req);
      const quota = quotaFor(req, deps, owner);
      const { lan, done } = lanForTask(req, deps, owner);
      let vm;
      try {
        const request = fromDbcCreate(req.body.additional ?? {}, owner, lan);
        vm = await vms.create(quota ? { ...request, quota } : request, { wait: false });
      } catch (e) {
        done(null);
        throw e;
      }
      done(vm.taskId);
      return {
        ...ok({ task_id: vm.taskId, create_time: dbcTime(vm.createdAt), desc: vm.spec.desc, status: "creating", operation_id: vm.operationId }),
        operation_id: vm.operationId,
      };
    },
  );

  app.post("/tasks/:id", { schema: schema("A task's details: login, ports, status, disks") }, async (req: Req, reply) => {
    const body = oneDataVersionDuring(() => replies.detail(renter(req), req.params.id, sshIp(req, deps.forwardHost)));
    return reply.type(JSON_CONTENT_TYPE).send(await body);
  });

  app.post(
    "/tasks/:verb/:id",
    {
      schema: schema(
        "start | shutdown | poweroff | stop | restart | reset | delete | logs | modify | passwd a task",
        "Lifecycle verbs answer at once with `ok` and an `operation_id` (top level). shutdown is graceful (ACPI " +
          "power button, then power-off after a timeout); restart takes `force_reboot` (query or additional). " +
          "logs takes flag=head|tail and line_num (≤ 100). modify changes ports at once; a new VNC port, CPU and memory take " +
          "effect at the next boot. passwd sets a guest user's password through the guest agent (additional: username, password).",
      ),
    },
    async (req: Req) => {
      const verb = req.params.verb!;
      const additional = (req.body.additional ?? {}) as Record<string, unknown>;
      if (verb === "logs") {
        const flag = req.query.flag ?? (additional.flag as string | undefined) ?? "tail";
        if (flag !== "head" && flag !== "tail") throw new DbcError(-25, 'head_or_tail is invalid"', 400);
        const asked = Number(req.query.line_num ?? additional.line_num ?? 100);
        if (!Number.isInteger(asked) || asked <= 0) throw new DbcError(-25, "invalid line num", 400);
        const vm = reads.getFor(renter(req), req.params.id);
        let lines = reads.logLines(vm.id, flag, Math.min(asked, MAX_LOG_LINES - 1));
        while (Buffer.byteLength(lines.join("\n")) > MAX_LOG_BYTES) lines = flag === "tail" ? lines.slice(1) : lines.slice(0, -1);
        return ok({ task_id: vm.taskId, log_content: lines });
      }
      if (verb === "passwd") {
        const vm = reads.getFor(renter(req), req.params.id);
        // DBC reads both as strings and takes anything else as empty.
        const text = (v: unknown) => (typeof v === "string" ? v : "");
        await vms.setPassword(vm.id, text(additional.username), text(additional.password));
        return ok("ok");
      }
      if (verb === "modify") {
        const owner = renter(req);
        const vm = reads.getFor(owner, req.params.id);
        const { nextBoot } = await vms.modify(vm.id, modifyFrom(additional), quotaFor(req, deps, owner));
        return ok(nextBoot ? "some changes will take effect on the next boot" : "ok");
      }
      const action = ACTIONS[verb];
      if (!action) throw new DbcError(-32601, `not support uri:${req.url.split("?")[0]}`, 404);
      const owner = renter(req);
      const vm = reads.getFor(owner, req.params.id);
      const force = String(req.query.force_reboot ?? additional.force_reboot ?? "");
      const quota = quotaFor(req, deps, owner);
      const op = vms.begin(vm.id, action, { force: force === "true" || (Number(force) || 0) !== 0, ...(quota ? { quota } : {}) });
      return { ...ok("ok"), operation_id: op.id };
    },
  );

  app.post("/operations/:id", { schema: schema("A long operation's state (batu addition)") }, async (req: Req) => {
    const owner = renter(req);
    const op = reads.operation(req.params.id);
    if (!op || !reads.owns(owner, op.vmId)) throw new DbcError(-3, "operation not exist", 200);
    return ok({ operation_id: op.id, task_id: op.taskId, action: op.action, state: op.state, error: op.error, progress: op.progress === null ? null : percentText(op.progress), start_time: op.startedAt, end_time: op.endedAt });
  });
};
