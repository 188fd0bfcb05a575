import type { Command } from "commander";
import { percentText } from "../../lib/units.js";
import type { HostClient, ImageTransfer } from "../../sdk/index.js";
import { failed, UsageError } from "../errors.js";
import { ask, hostClient, type RemoteOptions } from "../local-agent.js";
import { withAgentOptions, withOutputOptions, withRemoteOptions, type AgentOptions } from "../options.js";
import { outputFormat, print, type OutputOptions } from "../output.js";

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

interface Options extends AgentOptions, RemoteOptions, OutputOptions {
  server?: string;
  wait: boolean;
  upload?: boolean;
  download?: boolean;
}

export function register(program: Command): void {
  const image = program.command("image").description("this node's images and its image servers': pull, push, list, delete").addHelpText("after", `\n${usage}`);
  const sub = (name: string, description: string) => withRemoteOptions(withAgentOptions(image.command(name).description(description)));
  withOutputOptions(sub("ls", "this node's images, or an image server's").alias("list"))
    .option("--server <id>", "an image server's images (batu image servers)")
    .action((opts: Options) => imageList(opts));
  withOutputOptions(sub("servers", "the image servers this node knows")).action((opts: Options) => imageServers(opts));
  for (const direction of ["pull", "push"] as const) {
    sub(direction, direction === "pull" ? "bring an image from a server, with a progress bar" : "send an image to a server, with a progress bar")
      .argument("<server>", "the image server (batu image servers)")
      .argument("<name>", "the image's file name")
      .option("--no-wait", "return once the transfer started")
      .action((server: string, name: string, opts: Options) => imageTransfer(direction, server, name, opts));
  }
  sub("stop", "stop a transfer (a pull resumes later where it stopped)")
    .argument("<name>")
    .option("--upload", "the upload")
    .option("--download", "the download")
    .action((name: string, opts: Options) => imageStop(name, opts));
  sub("rm", "delete an image of this node").alias("delete").argument("<name>").action((name: string, opts: Options) => imageRemove(name, opts));
}

const client = (opts: Options) => hostClient(opts, 60_000);

const gib = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;

async function imageList(opts: Options): Promise<void> {
  const format = outputFormat(opts);
  const { images } = await ask(() => client(opts).imageList(opts.server));
  // One line per image, as before the move to commander (scripts read it).
  print(images, format, () =>
    images.length === 0 ? "no images" : images.map((i) => `${i.name}  ${gib(i.size_bytes)}${i.owner ? `  owner ${i.owner}` : ""}${i.sha256 ? `  sha256 ${i.sha256}` : ""}`).join("\n"),
  );
}

async function imageServers(opts: Options): Promise<void> {
  const { servers } = await ask(() => client(opts).imageServers());
  print(servers, outputFormat(opts), () => (servers.length ? servers.join("\n") : "no image servers configured"));
}

async function imageTransfer(direction: "pull" | "push", server: string, name: string, opts: Options): Promise<void> {
  const c = client(opts);
  const started = await ask(() => c.imageTransfer(direction, { server, name }));
  if (!opts.wait) return console.log(`${started.direction} of ${name} started`);
  const end = await ask(() => follow(c, started));
  if (end.status !== "done") throw failed(`${end.direction} of ${name} ${end.status}${end.error ? `: ${end.error}` : ""}`);
}

async function imageStop(name: string, opts: Options): Promise<void> {
  if (Boolean(opts.upload) === Boolean(opts.download)) throw new UsageError(`name the image and one of --upload or --download\n${usage}`);
  await ask(() => client(opts).imageStop({ name, direction: opts.upload ? "upload" : "download" }));
  console.log(`stopped ${name}`);
}

async function imageRemove(name: string, opts: Options): Promise<void> {
  await ask(() => client(opts).imageDelete(name));
  console.log(`deleted ${name}`);
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
