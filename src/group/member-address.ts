import { ApiError } from "../api/errors.js";
import { normalizeAddress } from "../sdk/index.js";
import { joinAddress, splitAddress } from "./local-address.js";

/** The port an agent listens on when a member names none (seed 000's). */
const DEFAULT_PORT = 10000;

/**
 * The address a master records for a member, from what the member states and where its request
 * came from (`sourceIp`): by default the member's own IP, with any valid port, never another host's
 * (the master connects there and relays the reply: a member naming 127.0.0.1:22 or another member's
 * address must not get that). Only the operator (`anyHost`) may record another host. No address
 * stated: the source IP and the default port. Throws ApiError bad_request naming `address`.
 */
export function checkedMemberAddress(stated: string | undefined, sourceIp: string, anyHost = false): string {
  const source = sourceIp.replace(/^::ffff:/, "");
  if (stated === undefined) return normalizeAddress(joinAddress(source, DEFAULT_PORT));
  const address = normalizeAddress(stated);
  const { host, port } = splitAddress(address);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ApiError("bad_request", `address: port ${address.slice(address.lastIndexOf(":") + 1)} is not 1-65535`);
  }
  if (!anyHost && host.replace(/^\[(.*)\]$/, "$1") !== source) {
    throw new ApiError("bad_request", `address: a member registers the address it calls from (${source}), not ${host}`);
  }
  return address;
}
