/**
 * Typed client of the renter API (`/api/v1`, DBC's dbc_client): every call is a POST of
 * `{peer_nodes_list: [node], additional, <identity>}` answered `{errcode, message}`; errcode 0 is
 * success, anything else a RenterApiError carrying DBC's code and text.
 */
import { HostApiError, requestJson } from "./http.js";
import type { IdentitySource } from "./wallet-signer.js";

/** A refusal of the renter API: DBC's errcode (1 failed, -3 authority, -25 bad request, ...) and message. */
export class RenterApiError extends Error {
  constructor(
    readonly errcode: number,
    message: string,
  ) {
    super(message);
    this.name = "RenterApiError";
  }
}

export interface MiningNode {
  node_id: string;
  name: string;
  version: string;
  /** online, rented or offline. */
  state: string;
}

/** A task as `tasks` lists it. */
export interface TaskItem {
  task_id: string;
  create_time: string;
  desc: string;
  status: string;
}

/** `tasks/<id>`: DBC's detail (login, ports, disks, ...); the fields the CLI reads, the rest kept as given. */
export interface TaskDetail extends TaskItem {
  ssh_ip?: string;
  ssh_port?: string;
  user_name?: string;
  login_password?: string;
  cpu_cores?: number;
  gpu_count?: number;
  mem_size?: string;
  vnc_port?: string;
  vnc_password?: string;
  [field: string]: unknown;
}

/** `tasks/start`'s reply. */
export interface TaskCreated extends TaskItem {
  operation_id: string;
}

/** A long operation's state (`operations/<id>`, batu's addition). */
export interface TaskOperation {
  operation_id: string;
  task_id: string;
  action: string;
  state: "running" | "done" | "failed";
  error: string | null;
  progress: string | null;
}

/** The lifecycle verbs of `tasks/<verb>/<id>`. */
export type TaskVerb = "start" | "shutdown" | "poweroff" | "stop" | "restart" | "reset" | "delete";

interface Envelope<T> {
  errcode: number;
  message: T;
  operation_id?: string;
}

export class RenterClient {
  constructor(
    /** `ip:port` of an agent (any member routes to the node's own, through the master). */
    private readonly address: string,
    /** The identity of each call; none for `mining_nodes`. */
    private readonly identity: IdentitySource | undefined,
    private readonly opts: { timeoutMs?: number; tls?: { sha256: string } } = {},
  ) {}

  /** One call; resolves with the whole envelope of a success. */
  async call<T>(path: string, node: string | null, additional: Record<string, unknown> = {}, signed = true): Promise<Envelope<T>> {
    if (signed && !this.identity) throw new Error("this call needs a renter identity");
    const body = { peer_nodes_list: node ? [node] : [], additional, ...(signed ? this.identity!() : {}) };
    let reply: Envelope<T>;
    try {
      reply = await requestJson<Envelope<T>>(this.address, `/api/v1/${path}`, { body, timeoutMs: this.opts.timeoutMs ?? 30_000, tls: this.opts.tls });
    } catch (e) {
      // DBC answers some refusals with a 4xx and its envelope (-25 bad request, -32701 node unreachable).
      const env = e instanceof HostApiError ? (e.body as Envelope<unknown> | undefined) : undefined;
      if (env && typeof env.errcode === "number") throw new RenterApiError(env.errcode, typeof env.message === "string" ? env.message : JSON.stringify(env.message));
      throw e;
    }
    if (reply?.errcode !== 0) {
      const m = reply?.message;
      throw new RenterApiError(reply?.errcode ?? -1, typeof m === "string" ? m : JSON.stringify(m));
    }
    return reply;
  }

  /** The nodes this agent knows, its own first (no identity needed). */
  async miningNodes(): Promise<MiningNode[]> {
    return (await this.call<{ mining_nodes: MiningNode[] }>("mining_nodes", null, {}, false)).message.mining_nodes;
  }

  /** The renter's session id (a wallet identity must ask). */
  async sessionId(node: string): Promise<string> {
    return (await this.call<{ session_id: string }>("mining_nodes/session_id", node)).message.session_id;
  }

  async tasks(node: string): Promise<TaskItem[]> {
    return (await this.call<TaskItem[]>("tasks", node)).message;
  }

  async task(node: string, taskId: string): Promise<TaskDetail> {
    return (await this.call<TaskDetail>(`tasks/${encodeURIComponent(taskId)}`, node)).message;
  }

  /** Creates a task; answered at once with status `creating` and the operation to follow. */
  async create(node: string, additional: Record<string, unknown>): Promise<TaskCreated> {
    const r = await this.call<TaskItem & { operation_id?: string }>("tasks/start", node, additional);
    return { ...r.message, operation_id: r.message.operation_id ?? r.operation_id ?? "" };
  }

  /** A lifecycle verb; answered at once with the operation that carries it out. */
  async act(node: string, verb: TaskVerb, taskId: string, additional: Record<string, unknown> = {}): Promise<{ operation_id: string | null }> {
    const r = await this.call<string>(`tasks/${verb}/${encodeURIComponent(taskId)}`, node, additional);
    return { operation_id: r.operation_id ?? null };
  }

  /** Changes ports, CPU, memory or GPUs; the reply says whether some wait for the next boot. */
  async modify(node: string, taskId: string, additional: Record<string, unknown>): Promise<string> {
    return (await this.call<string>(`tasks/modify/${encodeURIComponent(taskId)}`, node, additional)).message;
  }

  async logs(node: string, taskId: string, flag: "head" | "tail", lines: number): Promise<string[]> {
    return (await this.call<{ log_content: string[] }>(`tasks/logs/${encodeURIComponent(taskId)}`, node, { flag, line_num: lines })).message.log_content;
  }

  async operation(node: string, operationId: string): Promise<TaskOperation> {
    return (await this.call<TaskOperation>(`operations/${encodeURIComponent(operationId)}`, node)).message;
  }
}
