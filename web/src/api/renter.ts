import type { DbcRequest } from "../../../src/api/v1/request.js";
import { readEvents } from "./sse.js";

/** How a renter proves who it is on each call: a wallet signs a fresh nonce, or a session and its signature. */
export type RenterIdentity =
  | { kind: "wallet"; address: string; sign(message: string): string }
  | { kind: "session"; sessionId: string; sessionSign: string };

/** A task as `POST /api/v1/tasks` lists it, with what the event stream adds (readiness). */
export interface RenterTask {
  task_id: string;
  create_time?: string;
  desc?: string;
  status: string;
  ready?: boolean;
}

/** A refusal of the renter API: DBC's `{errcode, message}`. */
export class RenterApiError extends Error {
  constructor(
    readonly errcode: number,
    message: string,
  ) {
    super(message);
  }
}

/** A nonce used once: 24 random bytes as hex (the agent keeps every nonce it accepted, per signer). */
function freshNonce(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(24)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Loads the signing code (its own chunk, with its WASM) and makes a wallet identity from a secret. */
export async function walletIdentity(secret: string): Promise<RenterIdentity> {
  const { walletSigner } = await import("./wallet-signer.js");
  const signer = await walletSigner(secret);
  return { kind: "wallet", address: signer.address, sign: signer.sign };
}

/**
 * The renter's typed client of `/api/v1` (DBC's bodies: `peer_nodes_list`, `additional` and the
 * identity). A wallet identity signs a fresh nonce for every call, as DBC's clients do.
 */
export class RenterClient {
  constructor(
    readonly nodeId: string,
    private readonly identity: RenterIdentity,
  ) {}

  /** Who this renter is, for the page's header. */
  get name(): string {
    return this.identity.kind === "wallet" ? this.identity.address : `session ${this.identity.sessionId}`;
  }

  private identityFields(): Record<string, string> {
    if (this.identity.kind === "session") return { session_id: this.identity.sessionId, session_id_sign: this.identity.sessionSign };
    const nonce = freshNonce();
    return { wallet: this.identity.address, nonce, sign: this.identity.sign(nonce) };
  }

  private async call<T>(path: string, additional: Record<string, unknown> = {}): Promise<T> {
    const body = { peer_nodes_list: [this.nodeId], additional, ...this.identityFields() } as DbcRequest;
    const res = await fetch(`/api/v1${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    const reply = (await res.json()) as { errcode: number; message: unknown };
    if (reply.errcode !== 0) throw new RenterApiError(reply.errcode, String(reply.message));
    return reply.message as T;
  }

  /** The node this agent is (its first entry), asked without an identity. */
  static async localNode(): Promise<string> {
    const res = await fetch("/api/v1/mining_nodes", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ peer_nodes_list: [], additional: {} }) });
    const reply = (await res.json()) as { errcode: number; message: { mining_nodes: Array<{ node_id: string }> } };
    const node = reply.message.mining_nodes[0];
    if (reply.errcode !== 0 || !node) throw new Error("this agent did not name its node");
    return node.node_id;
  }

  tasks = () => this.call<RenterTask[]>("/tasks");
  start = (additional: Record<string, unknown>) => this.call<RenterTask>("/tasks/start", additional);
  act = (verb: "start" | "stop" | "delete", taskId: string) => this.call<unknown>(`/tasks/${verb}/${encodeURIComponent(taskId)}`);

  /** Follows `GET /api/v1/events` (the identity in the query) until `signal` aborts. */
  events(signal: AbortSignal, onTask: (t: RenterTask) => void): Promise<void> {
    const q = new URLSearchParams({ node: this.nodeId, ...this.identityFields() });
    return readEvents(`/api/v1/events?${q}`, { signal }, (type, data) => {
      if (type === "task") onTask(data as RenterTask);
    });
  }
}
