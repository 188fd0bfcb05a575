/**
 * The renter's side of the CLI: which agent serves the renter API (`/api/v1`), which node is meant,
 * and who signs. By default this host's agent over loopback HTTP and its own node; `--remote` for
 * another (its certificate pinned over HTTPS); `--node` for another node of the group (the master
 * routes to it). Each request is signed with a fresh nonce by the wallet (`--wallet-file` or
 * BATU_WALLET_SECRET), or carries a session id and its signature that a renter handed over.
 */
import { HostApiError, RenterApiError, RenterClient, UnreachableError, sessionIdentity, walletIdentity, type IdentitySource } from "../sdk/index.js";
import { failed, unreachable, UsageError } from "./errors.js";
import { parsePin, remoteEndpoint } from "./local-agent.js";
import { parsePort } from "./options.js";
import { walletOf, type WalletOptions } from "./wallet-secret.js";

export interface RenterOptions extends WalletOptions {
  port: string;
  remote?: string;
  tlsPin?: string;
  node?: string;
  sessionId?: string;
  sessionSign?: string;
}

/** The renter API of this host's agent, or of `--remote`'s. */
function endpoint(opts: RenterOptions): { address: string; tls?: { sha256: string } } {
  const remote = opts.remote ?? process.env.BATU_REMOTE;
  if (!remote) return { address: `127.0.0.1:${parsePort(opts.port)}` };
  const { address, https } = remoteEndpoint(remote);
  if (!https) return { address };
  const pin = opts.tlsPin ?? process.env.BATU_TLS_PIN;
  if (!pin) throw new UsageError("--remote over HTTPS needs the host's certificate pin: --tls-pin or BATU_TLS_PIN (`batu tls` there prints it)");
  return { address, tls: { sha256: parsePin(pin) } };
}

/** Who signs: a session handed over (both parts), else the wallet. */
async function identityOf(opts: RenterOptions, walletOnly: boolean): Promise<IdentitySource> {
  if (walletOnly) return walletIdentity(await walletOf(opts));
  const sessionId = opts.sessionId ?? process.env.BATU_SESSION_ID;
  const sessionSign = opts.sessionSign ?? process.env.BATU_SESSION_SIGN;
  if (sessionId !== undefined || sessionSign !== undefined) {
    if (!sessionId || !sessionSign) throw new UsageError("a session needs both --session-id and --session-sign (or BATU_SESSION_ID and BATU_SESSION_SIGN)");
    return sessionIdentity(sessionId, sessionSign);
  }
  return walletIdentity(await walletOf(opts));
}

/** A renter client with no identity: for `mining_nodes`, which needs none. */
export function anonymousClient(opts: RenterOptions): RenterClient {
  const { address, tls } = endpoint(opts);
  return new RenterClient(address, undefined, { ...(tls ? { tls } : {}) });
}

/** The client and the node id every renter command needs; `walletOnly` ignores a session (asking for one needs the wallet). */
export async function renterSession(opts: RenterOptions, walletOnly = false): Promise<{ client: RenterClient; node: string }> {
  const { address, tls } = endpoint(opts);
  const client = new RenterClient(address, await identityOf(opts, walletOnly), { ...(tls ? { tls } : {}) });
  // Default: the node of the agent asked (listed first by mining_nodes).
  const node = opts.node ?? (await renterAsk(() => anonymousClient(opts).miningNodes()))[0]?.node_id;
  if (!node) throw failed("the agent named no node: give --node <node_id>");
  return { client, node };
}

/** Runs a renter API call, its refusals (DBC's errcode and text) and its absence as the CLI says them. */
export async function renterAsk<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    if (e instanceof RenterApiError) throw failed(`refused (errcode ${e.errcode}): ${e.message}`);
    if (e instanceof HostApiError) throw failed(`refused: ${e.message}`);
    if (e instanceof UnreachableError) throw unreachable(`no agent answers: ${e.message}`);
    throw e;
  }
}
