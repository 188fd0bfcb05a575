#!/usr/bin/env node
import { UsageError } from "./errors.js";
import * as agent from "./commands/agent.js";
import * as group from "./commands/group.js";
import * as version from "./commands/version.js";
import * as rent from "./commands/rent.js";
import * as wallet from "./commands/wallet.js";
import * as token from "./commands/token.js";
import * as tls from "./commands/tls.js";
import * as vm from "./commands/vm.js";
import * as image from "./commands/image.js";
import * as usage from "./commands/usage.js";
import * as gpu from "./commands/gpu.js";

interface Command {
  run: (args: string[]) => Promise<void>;
  usage: string;
  summary: string;
}

/** The command table: one entry, one file. */
const COMMANDS: Record<string, Command> = {
  agent: { run: agent.agentCommand, usage: agent.usage, summary: "run this machine's agent (port 10000, HTTPS on 10443)" },
  group: { run: group.groupCommand, usage: group.usage, summary: "join a master's group" },
  rent: { run: rent.rentCommand, usage: rent.usage, summary: "grant, list and revoke rentals of nodes to renters" },
  wallet: { run: wallet.walletCommand, usage: wallet.usage, summary: "make a renter wallet, sign a nonce or session id" },
  token: { run: token.tokenCommand, usage: token.usage, summary: "rotate this host's admin, join or metrics token (no restart)" },
  tls: { run: tls.tlsCommand, usage: tls.usage, summary: "print this host's TLS certificate fingerprint and curl pin" },
  vm: { run: vm.vmCommand, usage: vm.usage, summary: "a VM's data disks and snapshots (live on a running VM)" },
  image: { run: image.imageCommand, usage: image.usage, summary: "this node's images and its image servers': pull, push, list, delete" },
  usage: { run: usage.usageCommand, usage: usage.usage, summary: "each renter's VM-, vCPU-, memory- and GPU-hours on this node (table or CSV)" },
  gpu: { run: gpu.gpuCommand, usage: gpu.usage, summary: "this node's GPUs for passthrough and who holds each" },
  version: { run: version.versionCommand, usage: version.usage, summary: "print the version" },
};

function help(): string {
  const rows = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `batu: a self-hosted GPU/VM cloud for the machines of one local network

Usage: batu <command> [options]

Commands:
${rows.join("\n")}
  help       show this help, or a command's: batu help <command>
`;
}

async function main(argv: string[]): Promise<void> {
  const [name, ...args] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    const topic = args[0] && COMMANDS[args[0]];
    console.log(topic ? topic.usage : help());
    return;
  }
  if (name === "--version" || name === "-v") return version.versionCommand();
  const command = COMMANDS[name];
  if (!command) throw new UsageError(`unknown command: ${name}\n\n${help()}`);
  if (args.includes("--help") || args.includes("-h")) {
    console.log(command.usage);
    return;
  }
  await command.run(args);
}

main(process.argv.slice(2)).then(
  () => process.exit(process.exitCode ?? 0),
  (e: unknown) => {
    if (e instanceof UsageError) {
      console.error(`batu: ${e.message}`);
      process.exit(e.exitCode);
    }
    console.error(e);
    process.exit(1);
  },
);
