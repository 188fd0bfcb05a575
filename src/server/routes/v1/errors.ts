import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { DbcError, DbcErrors } from "../../../api/v1/envelope.js";
import { RenterRefusal, type RenterRefusalReason } from "../../../auth/errors.js";
import { FieldError } from "../../../vm/create-request.js";
import { VmConflictError, VmNotFoundError, VmResourceError } from "../../../vm/service.js";
import { validationMessage } from "../../errors.js";
import { GuestAgentError } from "../../../hypervisor/qemu/qga.js";
import { ApiError } from "../../../api/errors.js";
import { LanError } from "../../../network/lan/model.js";

/** DBC's own wording for the request-shape errors its client checks (reference §2.1). */
function shapeMessage(message: string): string {
  if (/^peer_nodes_list: is required/.test(message)) return "has no peer_nodes_list";
  if (/^peer_nodes_list: must be array/.test(message)) return "peer_nodes_list is not array";
  if (/^additional: is required/.test(message)) return "has no additional";
  if (/^additional: must be object/.test(message)) return "additional is not object";
  return message;
}

/** DBC's errcode for each refusal of the renter authority. */
const REFUSAL_ERRCODES: Record<RenterRefusalReason, DbcError["errcode"]> = {
  no_identity: DbcErrors.bad_params.errcode,
  denied: DbcErrors.denied.errcode,
  not_renter: DbcErrors.denied.errcode,
};

/** A domain refusal as the DbcError it is on the wire; undefined for anything else. */
export function dbcErrorOf(error: unknown): DbcError | undefined {
  if (error instanceof DbcError) return error;
  if (error instanceof RenterRefusal) return new DbcError(REFUSAL_ERRCODES[error.reason], error.message);
  return undefined;
}

/** The DBC face's one error edge: everything becomes `{"errcode", "message"}` with DBC's HTTP status. */
export function dbcErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const send = (status: number, errcode: number, message: string) => void reply.status(status).send({ errcode, message });
  const dbc = dbcErrorOf(error);
  if (dbc) return send(dbc.httpStatus, dbc.errcode, dbc.message);
  if (error.validation) return send(400, -25, shapeMessage(validationMessage(error.validationContext, error.validation)));
  if (error.code === "FST_ERR_CTP_INVALID_JSON_BODY" || error.code === "FST_ERR_CTP_EMPTY_JSON_BODY") {
    return send(400, -25, `json parse error: ${error.message}`);
  }
  // Node-side refusals: HTTP 200 with errcode 1 (or -3 for a task that is not the caller's), as DBC.
  if (error instanceof FieldError || error instanceof LanError) return send(200, 1, error.message);
  if (error instanceof VmNotFoundError) return send(200, -3, "task_id not exist");
  if (error instanceof VmConflictError) return send(200, 1, error.message.replace(/^vm is /, "task is "));
  if (error instanceof VmResourceError) return send(200, 1, error.message);
  if (error instanceof GuestAgentError) return send(200, 1, `set user password failed: ${error.message}`);
  // A master of several that cannot pass the call to its group's leader now (group/ha): retry.
  if (error instanceof ApiError && error.code === "not_leader") return send(error.status, DbcErrors.internal.errcode, error.message);
  // A refusal of the shared hooks (a body nested too deep): DBC's bad-params answer.
  if (error instanceof ApiError && error.status < 500) return send(error.status, -25, error.message);
  if ((error.statusCode ?? 500) < 500) return send(error.statusCode!, -25, error.message);
  request.log.error({ err: error }, "request failed");
  return send(500, -1, "internal error");
}
