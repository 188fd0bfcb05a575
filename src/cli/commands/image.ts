import { readAdminToken } from "../../auth/identity.js";
import { percentText } from "../../lib/units.js";
import { HostApiError, HostClient, UnreachableError, type ImageTransfer } from "../../sdk/index.js";
import { UsageError } from "../errors.js";
import { AGENT_FLAGS, parse, parsePort } from "../options.js";

export const usage = `batu image ls [--server <id>] [--json]
batu image servers
batu image pull <server> <name> [--no-wait]
batu image push <server> <name> [--no-wait]
batu image stop <name> --upload|--download
batu image rm <name>
  [--conf-dir ./conf] [--port 10000]
  This node's images and its image servers' (config.json image_servers, the group's master), through
  the running agent. pull and push show a progress bar until the transfer ends (Ctrl-C leaves it
  running; --no-wait returns at once); a stopped or cut pull resumes where it stopped.`;

const FLAGS = { ...AGENT_FLAGS, json: { type: "boolean" }, server: { type: "string" }, "no-wait": { type: "boolean" }, upload: { type: "boolean" }, download: { type: "boolean" } } as const;

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GiB`;

export async function imageCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  const { values, positionals } = parse(rest, FLAGS);
  const client = clientOf(values);
  try {
    if (sub === "ls") {
      const { images } = await client.imageList(values.server);
      if (values.json) return console.log(JSON.stringify(images));
      if (images.length === 0) return console.log("no images");
      for (const i of images) console.log(`${i.name}  ${gib(i.size_bytes)}${i.owner ? `  owner ${i.owner}` : ""}${i.sha256 ? `  sha256 ${i.sha256}` : ""}`);
      return;
    }
    if (sub === "servers") {
      const { servers } = await client.imageServers();
      return console.log(servers.length ? servers.join("\n") : "no image servers configured");
    }
    if (sub === "pull" || sub === "push") {
      const [server, name] = positionals;
      if (!server || !name) throw new UsageError(`missing <server> or <name>\n${usage}`);
      const started = await client.imageTransfer(sub, { server, name });
      if (values["no-wait"]) return console.log(`${started.direction} of ${name} started`);
      const end = await follow(client, started);
      if (end.status !== "done") throw new UsageError(`${end.direction} of ${name} ${end.status}${end.error ? `: ${end.error}` : ""}`, 1);
      return;
    }
    if (sub === "stop") {
      const [name] = positionals;
      if (!name || values.upload === values.download) throw new UsageError(`name the image and one of --upload or --download\n${usage}`);
      await client.imageStop({ name, direction: values.upload ? "upload" : "download" });
      return console.log(`stopped ${name}`);
    }
    if (sub === "rm") {
      const [name] = positionals;
      if (!name) throw new UsageError(`missing <name>\n${usage}`);
      await client.imageDelete(name);
      return console.log(`deleted ${name}`);
    }
  } catch (e) {
    if (e instanceof HostApiError) throw new UsageError(`refused: ${e.message}`, 1);
    if (e instanceof UnreachableError) throw new UsageError(`no agent answers on port ${values.port}: ${e.message}`, 1);
    throw e;
  }
  throw new UsageError(`unknown image command: ${sub ?? "(none)"}\n${usage}`);
}

/** Polls a transfer to its end, drawing a progress bar (a line per 10 % when stderr is not a terminal). */
async function follow(client: HostClient, t: ImageTransfer): Promise<ImageTransfer> {
  const tty = process.stderr.isTTY;
  let lastTenth = -1;
  for (;;) {
    if (tty) {
      const width = 30;
      const filled = Math.round(t.progress * width);
      process.stderr.write(`\r${t.direction} ${t.name} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${percentText(t.progress)}`);
    } else if (Math.floor(t.progress * 10) !== lastTenth) {
      lastTenth = Math.floor(t.progress * 10);
      process.stderr.write(`${t.direction} ${t.name} ${percentText(t.progress)}\n`);
    }
    if (t.status !== "downloading" && t.status !== "uploading") break;
    await new Promise((r) => setTimeout(r, 250));
    t = await client.imageProgress(t.name, t.direction);
  }
  if (tty) process.stderr.write("\n");
  console.log(`${t.direction} of ${t.name}: ${t.status}`);
  return t;
}

function clientOf(values: { port?: string; "conf-dir"?: string }): HostClient {
  const token = readAdminToken(values["conf-dir"]!);
  if (!token) throw new UsageError(`no admin token in ${values["conf-dir"]}: is this the agent's conf dir?`, 1);
  return new HostClient(`127.0.0.1:${parsePort(values.port!)}`, token, 60_000);
}
