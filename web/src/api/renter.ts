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

const id = encodeURIComponent;

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

  /** The whole reply (`{errcode: 0, message, ...}`: a long operation's id rides beside the message). */
  private async reply<T>(path: string, additional: Record<string, unknown> = {}): Promise<{ message: T; operation_id?: string }> {
    const body = { peer_nodes_list: [this.nodeId], additional, ...this.identityFields() } as DbcRequest;
    const res = await fetch(`/api/v1${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    const reply = (await res.json()) as { errcode: number; message: unknown; operation_id?: string };
    if (reply.errcode !== 0) throw new RenterApiError(reply.errcode, String(reply.message));
    return reply as { message: T; operation_id?: string };
  }

  private async call<T>(path: string, additional: Record<string, unknown> = {}): Promise<T> {
    return (await this.reply<T>(path, additional)).message;
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
  act = (verb: "start" | "stop" | "shutdown" | "poweroff" | "restart" | "reset" | "delete", taskId: string) => this.call<unknown>(`/tasks/${verb}/${encodeURIComponent(taskId)}`);
  // DBC's replies below have no server schema to share (their shapes are DBC's, built in the routes):
  // the page shows their fields as they come.
  detail = (taskId: string) => this.call<Record<string, unknown>>(`/tasks/${id(taskId)}`);
  logs = (taskId: string) => this.call<{ log_content: string[] }>(`/tasks/logs/${id(taskId)}`, { flag: "tail", line_num: 100 });
  /** Sets a guest user's password through the guest agent. */
  passwd = (taskId: string, username: string, password: string) => this.call<unknown>(`/tasks/passwd/${id(taskId)}`, { username, password });
  /** `tasks/modify/<id>`: only the `new_*` fields given change (DBC's rule); answers whether a restart is needed. */
  modify = (taskId: string, additional: Record<string, string>) => this.call<unknown>(`/tasks/modify/${id(taskId)}`, additional);
  disks = (taskId: string) => this.call<Array<{ name: string; file: string; size: string | number }>>(`/disk/list/${id(taskId)}`);
  addDisk = (taskId: string, sizeGiB: number) => this.call<unknown>(`/disk/add/${id(taskId)}`, { size: sizeGiB });
  resizeDisk = (taskId: string, disk: string, byGiB: number) => this.call<unknown>(`/disk/resize/${id(taskId)}`, { disk, size: byGiB });
  deleteDisk = (taskId: string, disk: string) => this.call<unknown>(`/disk/delete/${id(taskId)}`, { disk });
  snapshots = (taskId: string) => this.call<Array<Record<string, unknown> & { snapshot_name: string }>>(`/snapshot/list/${id(taskId)}`);
  /** Starts a snapshot; its progress is `operation(<operation_id>)`. */
  createSnapshot = (taskId: string, name: string, desc: string) => this.reply<unknown>(`/snapshot/create/${id(taskId)}`, { snapshot_name: name, desc });
  restoreSnapshot = (taskId: string, name: string) => this.call<unknown>(`/snapshot/restore/${id(taskId)}/${id(name)}`);
  deleteSnapshot = (taskId: string, name: string) => this.call<unknown>(`/snapshot/delete/${id(taskId)}/${id(name)}`);
  operation = (operationId: string) =>
    this.call<{ state: string; progress: string | null; error: string | null; end_time: string | null }>(`/operations/${id(operationId)}`);
  lans = () => this.call<Array<Record<string, unknown> & { network_name: string }>>("/lan");
  createLan = (name: string, cidr: string) => this.call<unknown>("/lan/create", { network_name: name, ip_cidr: cidr });
  deleteLan = (name: string) => this.call<unknown>(`/lan/delete/${id(name)}`);

  /** Follows `GET /api/v1/events` (the identity in the query) until `signal` aborts. */
  events(signal: AbortSignal, onTask: (t: RenterTask) => void): Promise<void> {
    const q = new URLSearchParams({ node: this.nodeId, ...this.identityFields() });
    return readEvents(`/api/v1/events?${q}`, { signal }, (type, data) => {
      if (type === "task") onTask(data as RenterTask);
    });
  }
}
