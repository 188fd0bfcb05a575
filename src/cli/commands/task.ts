/**
 * `batu task ...`: a renter's VMs (DBC's tasks) through the renter API, as dbc_client's users know
 * them: list, start (create, or start a stopped one), show, stop, restart, delete, modify, logs.
 * Signing is done here: a fresh nonce per request from the wallet, or a session handed over.
 */
import type { Command } from "commander";
import { RenterApiError, type RenterClient, type TaskDetail, type TaskItem, type TaskVerb } from "../../sdk/index.js";
import { signText } from "../../sdk/wallet-signer.js";
import { failed } from "../errors.js";
import { collect, parseCount, parsePort, withAgentOptions, withOutputOptions } from "../options.js";
import { isMachine, keyValues, outputFormat, print, table, type OutputOptions } from "../output.js";
import { anonymousClient, renterAsk, renterSession, type RenterOptions } from "../renter.js";
import { spinnerAllowed } from "../spinner.js";
import { waitUntil } from "../wait.js";
import { walletOf } from "../wallet-secret.js";

export const usage = `batu task nodes|list|start|show|stop|restart|delete|modify|logs|session ...
  A renter's tasks (VMs) on a rented node, through the renter API (/api/v1, DBC's dbc_client).
  Signs each request with the wallet (--wallet-file <file>, or BATU_WALLET_SECRET), or uses a session
  another renter handed over (--session-id and --session-sign, or BATU_SESSION_ID and BATU_SESSION_SIGN).
  The node: --node <node_id>, default the agent's own. The agent: this host's (--port), or
  --remote https://<host>:10443 --tls-pin <sha256> (or http://<host>:10000). See docs/cli.md.`;

type Options = RenterOptions & OutputOptions & { wait: boolean; timeout: string };

interface SpecOptions extends Options {
  cpus?: string;
  memGib?: string;
  diskGib?: string;
  image?: string;
  desc?: string;
  gpus?: string;
  sshPort?: string;
  vncPort?: string;
  forward?: string[];
}

/** The renter's flags, on every subcommand. */
function renterCommand(parent: Command, name: string, description: string): Command {
  return withOutputOptions(withAgentOptions(parent.command(name).description(description)))
    .option("--node <node_id>", "the rented node (default: the agent's own)")
    .option("--wallet-file <file>", "the wallet's secret (else BATU_WALLET_SECRET)")
    .option("--secret-file <file>", "the same as --wallet-file")
    .option("--type <type>", "the wallet's key type: sr25519 or ed25519", "sr25519")
    .option("--session-id <id>", "a session handed over (or BATU_SESSION_ID)")
    .option("--session-sign <sign>", "its signature (or BATU_SESSION_SIGN)")
    .option("--remote <url>", "another agent: https://<host>:10443 or http://<host>:10000 (or BATU_REMOTE)")
    .option("--tls-pin <sha256>", "its certificate's SHA-256, as `batu tls` prints it there (or BATU_TLS_PIN)");
}

/** Lifecycle verbs answer at once; these wait for the operation, with a spinner. */
const waitable = (cmd: Command) => cmd.option("--no-wait", "return once the node accepted it").option("--timeout <sec>", "how long to wait", "300");

const TASK_COLUMNS = [
  { header: "task id", value: (t: TaskItem) => t.task_id },
  { header: "status", value: (t: TaskItem) => t.status },
  { header: "created", value: (t: TaskItem) => t.create_time },
  { header: "desc", value: (t: TaskItem) => t.desc },
];

export function register(program: Command): void {
  const task = program.command("task").description("a renter's tasks (VMs) on a rented node: list, start, stop, delete, ...").addHelpText("after", `\n${usage}`);

  renterCommand(task, "nodes", "the nodes the agent knows, and whether each is rented").action((opts: Options) => nodes(opts));
  renterCommand(task, "list", "your tasks on the node")
    .alias("ls")
    .action((opts: Options) => list(opts));
  specFlags(waitable(renterCommand(task, "start", "create a task (no id: --cpus, --mem-gib, ...) or start a stopped one (<task_id>)").argument("[task_id]"))).action(
    (id: string | undefined, opts: SpecOptions) => (id ? act(id, "start", opts) : create(opts)),
  );
  renterCommand(task, "show", "a task's details: login, ports, status")
    .argument("<task_id>")
    .action((id: string, opts: Options) => show(id, opts));
  waitable(renterCommand(task, "stop", "shut a task down (--force: power it off)").argument("<task_id>"))
    .option("--force", "power off at once")
    .action((id: string, opts: Options & { force?: boolean }) => act(id, opts.force ? "poweroff" : "shutdown", opts));
  waitable(renterCommand(task, "restart", "restart a task (--force: reset it)").argument("<task_id>"))
    .option("--force", "reset at once")
    .action((id: string, opts: Options & { force?: boolean }) => act(id, "restart", opts, opts.force ? { force_reboot: "true" } : {}));
  waitable(renterCommand(task, "delete", "delete a task and its disks").alias("rm").argument("<task_id>")).action((id: string, opts: Options) => act(id, "delete", opts));
  specFlags(renterCommand(task, "modify", "change a task's ports, CPUs, memory or GPUs (some at its next boot)").argument("<task_id>")).action(
    (id: string, opts: SpecOptions) => modify(id, opts),
  );
  renterCommand(task, "logs", "a task's log")
    .argument("<task_id>")
    .option("--head", "the oldest lines instead of the newest")
    .option("--lines <n>", "how many (at most 99)", "100")
    .action((id: string, opts: Options & { head?: boolean; lines: string }) => logs(id, opts));
  renterCommand(task, "session", "your session id and its signature, for a second user (a bearer credential: hand it with care)").action((opts: Options) => session(opts));
}

/** The task's resources, for `start` (create) and `modify`. */
function specFlags(cmd: Command): Command {
  return cmd
    .option("--cpus <n>", "CPU cores (create: default 1)")
    .option("--mem-gib <n>", "memory, GiB (create: default 1)")
    .option("--disk-gib <n>", "create: a data disk of this size, GiB")
    .option("--image <name>", "create: the image to boot (default the demo image)")
    .option("--desc <text>", "create: a description")
    .option("--gpus <n>", "GPUs")
    .option("--ssh-port <port>", "host port forwarded to its ssh")
    .option("--vnc-port <port>", "host port of its VNC (5900-65535)")
    .option("--forward <spec>", "a port forward in DBC's syntax, repeatable: tcp,8080:80", collect);
}

async function nodes(opts: Options): Promise<void> {
  const list = await renterAsk(() => anonymousClient(opts).miningNodes());
  print(list, outputFormat(opts), () =>
    table(list, [
      { header: "node id", value: (n) => n.node_id },
      { header: "name", value: (n) => n.name },
      { header: "state", value: (n) => n.state },
      { header: "version", value: (n) => n.version },
    ]),
  );
}

async function list(opts: Options): Promise<void> {
  const format = outputFormat(opts);
  const { client, node } = await renterSession(opts);
  const tasks = await renterAsk(() => client.tasks(node));
  print(tasks, format, () => (tasks.length === 0 ? "no tasks" : table(tasks, TASK_COLUMNS)));
}

/** DBC's `additional` for tasks/start: every value a string, as DBC's node reads them. */
export function createAdditional(opts: SpecOptions): Record<string, unknown> {
  return {
    cpu_cores: String(parseCount(opts.cpus ?? "1", "--cpus", 1, 256)),
    mem_size: String(parseCount(opts.memGib ?? "1", "--mem-gib", 1, 4096)),
    ...(opts.diskGib !== undefined ? { disk_size: String(parseCount(opts.diskGib, "--disk-gib", 1, 65536)) } : {}),
    ...(opts.image !== undefined ? { image_name: opts.image } : {}),
    ...(opts.desc !== undefined ? { desc: opts.desc } : {}),
    ...(opts.gpus !== undefined ? { gpu_count: String(parseCount(opts.gpus, "--gpus", 0, 64)) } : {}),
    ...(opts.sshPort !== undefined ? { ssh_port: String(parsePort(opts.sshPort, "--ssh-port")) } : {}),
    ...(opts.vncPort !== undefined ? { vnc_port: String(parsePort(opts.vncPort, "--vnc-port")) } : {}),
    ...(opts.forward?.length ? { custom_port: opts.forward } : {}),
  };
}

/** DBC's `additional` for tasks/modify: only what the flags name, under its `new_` keys. */
export function modifyAdditional(opts: SpecOptions): Record<string, unknown> {
  const a: Record<string, unknown> = {
    ...(opts.cpus !== undefined ? { new_cpu_cores: String(parseCount(opts.cpus, "--cpus", 1, 256)) } : {}),
    ...(opts.memGib !== undefined ? { new_mem_size: String(parseCount(opts.memGib, "--mem-gib", 1, 4096)) } : {}),
    ...(opts.gpus !== undefined ? { new_gpu_count: String(parseCount(opts.gpus, "--gpus", 0, 64)) } : {}),
    ...(opts.sshPort !== undefined ? { new_ssh_port: String(parsePort(opts.sshPort, "--ssh-port")) } : {}),
    ...(opts.vncPort !== undefined ? { new_vnc_port: String(parsePort(opts.vncPort, "--vnc-port")) } : {}),
    ...(opts.forward?.length ? { new_custom_port: opts.forward } : {}),
  };
  return a;
}

/** Follows an operation to its end, a spinner meanwhile; fails (exit 1) with the node's reason. */
async function follow(client: RenterClient, node: string, operationId: string | null, what: string, opts: Options): Promise<void> {
  if (!opts.wait || !operationId) return;
  const timeoutMs = parseCount(opts.timeout, "--timeout", 1, 86_400) * 1000;
  await waitUntil(
    async () => {
      const op = await renterAsk(() => client.operation(node, operationId));
      if (op.state === "done") return { done: true };
      if (op.state === "failed") return { failed: `${what} failed: ${op.error ?? "no reason given"}` };
      return { waiting: op.progress ? `${op.action} ${op.progress}` : op.action };
    },
    { timeoutMs, spin: spinnerAllowed(!isMachine(outputFormat(opts))), what },
  );
}

/** Waits until the task is gone (DBC's `task_id not exist`), or its delete failed. */
async function followDelete(client: RenterClient, node: string, id: string, opts: Options): Promise<void> {
  if (!opts.wait) return;
  await waitUntil(
    async () => {
      try {
        const t = await client.task(node, id);
        return t.status === "delete error" ? { failed: `task ${id}: delete failed` } : { waiting: t.status };
      } catch (e) {
        if (e instanceof RenterApiError && e.errcode === -3 && /not exist/.test(e.message)) return { done: true };
        return renterAsk(() => Promise.reject(e));
      }
    },
    { timeoutMs: parseCount(opts.timeout, "--timeout", 1, 86_400) * 1000, spin: spinnerAllowed(!isMachine(outputFormat(opts))), what: `task ${id}` },
  );
}

async function create(opts: SpecOptions): Promise<void> {
  const format = outputFormat(opts);
  const additional = createAdditional(opts);
  const { client, node } = await renterSession(opts);
  const created = await renterAsk(() => client.create(node, additional));
  await follow(client, node, created.operation_id, `task ${created.task_id}`, opts);
  const detail = opts.wait ? await renterAsk(() => client.task(node, created.task_id)) : created;
  print(detail, format, () => `created task ${created.task_id}${opts.wait ? "" : " (creating: batu task show to follow it)"}\n${describeTask(detail)}`);
}

const DONE: Record<TaskVerb, string> = { start: "started", shutdown: "shut down", poweroff: "powered off", stop: "stopped", restart: "restarted", reset: "reset", delete: "deleted" };

async function act(id: string, verb: TaskVerb, opts: Options, additional: Record<string, unknown> = {}): Promise<void> {
  const { client, node } = await renterSession(opts);
  const { operation_id } = await renterAsk(() => client.act(node, verb, id, additional));
  // A deleted task's operation goes with it: follow the task until it is gone instead.
  if (verb === "delete") await followDelete(client, node, id, opts);
  else await follow(client, node, operation_id, `task ${id}`, opts);
  const done = opts.wait ? DONE[verb] : `${verb} begun:`;
  print({ task_id: id, action: verb, operation_id, done: opts.wait }, outputFormat(opts), () => `${done} ${id}`);
}

function describeTask(t: TaskItem | TaskDetail): string {
  const d = t as TaskDetail;
  const rows: Array<readonly [string, string | number | boolean | null | undefined]> = [
    ["task id", t.task_id],
    ["status", t.status],
    ["created", t.create_time],
    ["desc", t.desc],
  ];
  if (d.ssh_port !== undefined) rows.push(["ssh", `${d.user_name ?? "dbc"}@${d.ssh_ip ?? "-"} -p ${d.ssh_port}`]);
  if (d.login_password !== undefined) rows.push(["password", d.login_password]);
  if (d.cpu_cores !== undefined) rows.push(["cpus", d.cpu_cores]);
  if (d.mem_size !== undefined) rows.push(["memory", d.mem_size]);
  if (d.gpu_count !== undefined) rows.push(["gpus", d.gpu_count]);
  if (d.vnc_port !== undefined) rows.push(["vnc", `${d.ssh_ip ?? "-"}:${d.vnc_port} (password ${d.vnc_password ?? "-"})`]);
  return keyValues(rows);
}

async function show(id: string, opts: Options): Promise<void> {
  const { client, node } = await renterSession(opts);
  const detail = await renterAsk(() => client.task(node, id));
  print(detail, outputFormat(opts), () => describeTask(detail));
}

async function modify(id: string, opts: SpecOptions): Promise<void> {
  const additional = modifyAdditional(opts);
  if (Object.keys(additional).length === 0) throw failed("nothing to change: give --cpus, --mem-gib, --gpus, --ssh-port, --vnc-port or --forward");
  const { client, node } = await renterSession(opts);
  const said = await renterAsk(() => client.modify(node, id, additional));
  print({ task_id: id, message: said }, outputFormat(opts), () => `modified ${id}: ${said}`);
}

async function logs(id: string, opts: Options & { head?: boolean; lines: string }): Promise<void> {
  const lines = parseCount(opts.lines, "--lines", 1, 100);
  const { client, node } = await renterSession(opts);
  const content = await renterAsk(() => client.logs(node, id, opts.head ? "head" : "tail", lines));
  print(content, outputFormat(opts), () => (content.length ? content.join("\n") : "(empty)"));
}

async function session(opts: Options): Promise<void> {
  // A session is asked for with the wallet itself, never with another session.
  const pair = await walletOf(opts);
  const { client, node } = await renterSession(opts, true);
  const id = await renterAsk(() => client.sessionId(node));
  const data = { session_id: id, session_id_sign: signText(pair, id) };
  print(data, outputFormat(opts), () => `export BATU_SESSION_ID='${data.session_id}'\nexport BATU_SESSION_SIGN='${data.session_id_sign}'`);
}
