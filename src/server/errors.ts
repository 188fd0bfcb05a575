import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { ApiError, HostErrors, type HostErrorCode } from "../api/errors.js";
import { RentalError, type RentalErrorReason } from "../auth/errors.js";
import { ExecError } from "../lib/exec.js";
import { FieldError } from "../vm/create-request.js";
import { VmConflictError, VmNotFoundError, VmResourceError } from "../vm/service.js";

/** The host API's code for each refusal of the rental ledger. */
const RENTAL_CODES: Record<RentalErrorReason, HostErrorCode> = { invalid: "bad_request", rented: "conflict", not_found: "not_found" };

/** Domain errors of the services → the host API's status and message; undefined for anything else. */
export function domainError(error: unknown): { status: number; message: string } | undefined {
  if (error instanceof ApiError) return { status: error.status, message: error.message };
  if (error instanceof RentalError) return { status: HostErrors[RENTAL_CODES[error.reason]].status, message: error.message };
  if (error instanceof FieldError) return { status: 400, message: error.message.startsWith(`${error.field}`) ? error.message : `${error.field}: ${error.message}` };
  if (error instanceof VmNotFoundError) return { status: 404, message: `vm_id: no such vm: ${error.id}` };
  if (error instanceof VmConflictError) return { status: 409, message: error.message };
  if (error instanceof VmResourceError) return { status: 409, message: error.message };
  if (error instanceof ExecError) return { status: 500, message: `${error.command} failed: ${error.stderr.trim().slice(0, 300)}` };
  return undefined;
}

interface AjvLikeError {
  instancePath?: string;
  message?: string;
  keyword?: string;
  params?: Record<string, unknown>;
}

/** Turns the first schema error into "field: what is wrong", naming the field a user must fix. */
export function validationMessage(context: string | undefined, errors: AjvLikeError[]): string {
  const e = errors[0];
  if (!e) return "invalid request";
  let field = (e.instancePath ?? "").replace(/^\//, "").replace(/\//g, ".");
  if (e.keyword === "required" && typeof e.params?.missingProperty === "string") {
    field = field ? `${field}.${e.params.missingProperty}` : e.params.missingProperty;
    return `${field}: is required`;
  }
  if (e.keyword === "additionalProperties" && typeof e.params?.additionalProperty === "string") {
    const extra = field ? `${field}.${e.params.additionalProperty}` : e.params.additionalProperty;
    return `${extra}: is not a known field`;
  }
  const where = field || (context ?? "body");
  if (e.keyword === "enum" && Array.isArray(e.params?.allowedValues)) {
    return `${where}: must be one of ${(e.params.allowedValues as unknown[]).join(", ")}`;
  }
  return `${where}: ${e.message ?? "is invalid"}`;
}

/** The one place where errors become HTTP replies: `{"message": ...}` with the catalogue's status. */
export function errorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const known = domainError(error);
  if (known) {
    if (known.status >= 500) request.log.error({ err: error }, "request failed");
    else request.log.info({ status: known.status, reason: known.message }, "request refused");
    void reply.status(known.status).send({ message: known.message });
    return;
  }
  if (error.validation) {
    void reply.status(400).send({ message: validationMessage(error.validationContext, error.validation) });
    return;
  }
  switch (error.code) {
    case "FST_ERR_CTP_INVALID_JSON_BODY":
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      void reply.status(400).send({ message: "body: is not valid JSON" });
      return;
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      void reply.status(415).send({ message: "body: unsupported content type (send application/json)" });
      return;
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      void reply.status(413).send({ message: "body: too large" });
      return;
  }
  const status = error.statusCode ?? 500;
  if (status < 500) {
    void reply.status(status).send({ message: error.message });
    return;
  }
  request.log.error({ err: error }, "request failed");
  void reply.status(500).send({ message: "internal error" });
}
