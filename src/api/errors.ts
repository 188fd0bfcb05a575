/**
 * The error catalogue of the host API: each code with its HTTP status. Services throw `ApiError`s;
 * the server turns them into `{"message": ...}` replies in one place. docs/errors.md lists them.
 */
export const HostErrors = {
  unauthorized: { status: 401, message: "missing or wrong bearer token" },
  tls_required: { status: 403, message: "this call is served to other hosts over HTTPS only" },
  bad_request: { status: 400, message: "bad request" },
  not_found: { status: 404, message: "not found" },
  not_master: { status: 409, message: "this host is not a master" },
  not_member: { status: 409, message: "this host is not a member of a group" },
  conflict: { status: 409, message: "conflict" },
  insufficient_resources: { status: 409, message: "not enough free resources on this host" },
  not_leader: { status: 503, message: "this master does not lead its group now: retry, or call the group's service address" },
  master_unreachable: { status: 502, message: "the master could not be reached" },
  upstream_refused: { status: 502, message: "the master refused the request" },
  internal: { status: 500, message: "internal error" },
} as const;

export type HostErrorCode = keyof typeof HostErrors;

export class ApiError extends Error {
  readonly status: number;
  constructor(
    readonly code: HostErrorCode,
    message?: string,
  ) {
    super(message ?? HostErrors[code].message);
    this.name = "ApiError";
    this.status = HostErrors[code].status;
  }
}
