import { readAdminToken } from "../auth/identity.js";
import { HostApiError, HostClient, UnreachableError } from "../sdk/index.js";
import { UsageError } from "./errors.js";
import { parsePort } from "./options.js";

/** The agent of this host, with the admin token from its conf dir. */
export function localAgent(values: { "conf-dir": string; port: string }): HostClient {
  const token = readAdminToken(values["conf-dir"]);
  if (!token) throw new UsageError(`no admin token in ${values["conf-dir"]}: is this the host's conf dir?`, 1);
  return new HostClient(`127.0.0.1:${parsePort(values.port)}`, token);
}

/** Runs a call to the local agent, its refusals and its absence as the CLI says them (exit 1). */
export async function ask<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    if (e instanceof HostApiError) throw new UsageError(`refused: ${e.message}`, 1);
    if (e instanceof UnreachableError) throw new UsageError(`no agent answers here: ${e.message}`, 1);
    throw e;
  }
}
