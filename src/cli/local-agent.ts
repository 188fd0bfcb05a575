/**
 * Which agent a command talks to, and how its failures read. By default the agent of this host, over
 * loopback HTTP with the admin token from its conf dir; with `--remote`, another host's agent over
 * HTTPS, its certificate pinned (`--tls-pin`, what `batu tls` prints there) and its admin token given.
 */
import { readAdminToken } from "../auth/identity.js";
import { HostApiError, HostClient, UnreachableError } from "../sdk/index.js";
import { failed, unreachable, UsageError } from "./errors.js";
import { parsePort } from "./options.js";

/** `--remote`, `--token`, `--tls-pin` as commander gives them. */
export interface RemoteOptions {
  remote?: string;
  token?: string;
  tlsPin?: string;
}

/** The agent of this host, with the admin token from its conf dir. */
export function localAgent(values: { confDir: string; port: string }, timeoutMs = 10_000): HostClient {
  const token = readAdminToken(values.confDir);
  if (!token) throw failed(`no admin token in ${values.confDir}: is this the host's conf dir? (or give --remote)`);
  return new HostClient(`127.0.0.1:${parsePort(values.port)}`, token, timeoutMs);
}

/** Where `--remote` points: `https://host:port` (default 10443), `http://host:port` (10000), or a bare `host[:port]` (HTTPS). */
export function remoteEndpoint(text: string): { address: string; https: boolean } {
  const withScheme = /^[a-z]+:\/\//i.test(text) ? text : `https://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new UsageError(`--remote: not a URL: ${text}`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new UsageError(`--remote: http or https, not ${url.protocol}`);
  if (url.pathname !== "/" || url.search) throw new UsageError(`--remote: the agent's root, without a path: ${text}`);
  const https = url.protocol === "https:";
  return { address: `${url.hostname}:${url.port || (https ? 10443 : 10000)}`, https };
}

const PIN = /^[0-9a-f]{64}$/;

/** A certificate pin as `batu tls` prints it (hex, colons and case allowed). */
export function parsePin(text: string): string {
  const pin = text.trim().toLowerCase().replace(/:/g, "");
  if (!PIN.test(pin)) throw new UsageError("--tls-pin: the certificate's SHA-256 (64 hex characters), as `batu tls` prints it on that host");
  return pin;
}

/** The host API client a command uses: `--remote` (or BATU_REMOTE) when given, else this host's agent. */
export function hostClient(opts: { confDir: string; port: string } & RemoteOptions, timeoutMs = 10_000): HostClient {
  const remote = opts.remote ?? process.env.BATU_REMOTE;
  if (!remote) return localAgent(opts, timeoutMs);
  const { address, https } = remoteEndpoint(remote);
  const token = opts.token ?? process.env.BATU_TOKEN;
  if (!token) throw new UsageError("--remote needs the host's admin token: --token or BATU_TOKEN (its conf/admin.token)");
  if (!https) return new HostClient(address, token, timeoutMs);
  const pinText = opts.tlsPin ?? process.env.BATU_TLS_PIN;
  // A self-signed certificate says nothing by itself: without its pin, the token would go to whoever answers.
  if (!pinText) throw new UsageError("--remote over HTTPS needs the host's certificate pin: --tls-pin or BATU_TLS_PIN (run `batu tls` there)");
  return new HostClient(address, token, timeoutMs, { sha256: parsePin(pinText) });
}

/** A failed call as the CLI says it: refused (exit 1) or nobody answered (exit 3). */
export function explain(e: unknown): unknown {
  if (e instanceof HostApiError) return failed(`refused: ${e.message}`);
  if (e instanceof UnreachableError) return unreachable(`no agent answers: ${e.message}`);
  return e;
}

/** Runs a call to an agent, its refusals and its absence as the CLI says them. */
export async function ask<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    throw explain(e);
  }
}
