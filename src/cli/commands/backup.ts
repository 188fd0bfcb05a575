import type { Command } from "commander";
import { connect } from "node:net";
import { join, resolve } from "node:path";
import { backup, BACKUP_DB as DB_FILE, restore } from "../../store/backup.js";
import { failed } from "../errors.js";
import { parsePort, withAgentOptions, type AgentOptions } from "../options.js";

export const usage = `batu backup <folder> [--conf-dir ./conf] [--data-dir ./data] [--json]
batu restore <folder> [--conf-dir ./conf] [--data-dir ./data] [--port 10000] [--json]
  backup copies this host's state into a new folder (0700): its store (data/batu.db: the group's
  members, the rental ledger, sessions, used nonces, VMs, image and LAN registries), copied with
  SQLite's online backup while the agent runs, and its conf/ files (node key, tokens, TLS key,
  config). It holds secrets: keep it as you keep conf/. VM disks are not in it.
  restore puts a backup in place, with the agent stopped (refused while one answers on --port): the
  backup is checked first (SQLite's integrity check, a schema this batu knows), the store it
  replaces is kept beside it (batu.db.before-restore-<time>). Start the agent afterwards.`;

interface Options extends AgentOptions {
  json?: boolean;
}

export function register(program: Command): void {
  withAgentOptions(program.command("backup").argument("<folder>", "a new folder").description("copy this host's state (store and conf) into a folder").addHelpText("after", `\n${usage}`))
    .option("--json", "print JSON")
    .action((folder: string, opts: Options) => backupCommand(folder, opts));
  withAgentOptions(program.command("restore").argument("<folder>", "a folder batu backup made").description("put a backup in place (the agent stopped)").addHelpText("after", `\n${usage}`))
    .option("--json", "print JSON")
    .action((folder: string, opts: Options) => restoreCommand(folder, opts));
}

async function backupCommand(folder: string, values: Options): Promise<void> {
  const summary = await backup(join(resolve(values.dataDir), DB_FILE), resolve(values.confDir), resolve(folder)).catch((e: unknown) => {
    throw failed(`backup failed: ${e instanceof Error ? e.message : String(e)}`);
  });
  if (values.json) return console.log(JSON.stringify({ message: "ok", ...summary }));
  console.log(`backed up to ${resolve(folder)}: the store (schema ${summary.schemaVersion}) and ${summary.confFiles.length} conf files (${summary.confFiles.join(", ")})`);
}

async function restoreCommand(folder: string, values: Options): Promise<void> {
  const port = parsePort(values.port);
  if (await answers("127.0.0.1", port)) throw failed(`an agent answers on port ${port}: stop it first (its store must not change under the restore)`);
  let summary;
  try {
    summary = restore(resolve(folder), join(resolve(values.dataDir), DB_FILE), resolve(values.confDir));
  } catch (e) {
    throw failed(`restore refused: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (values.json) return console.log(JSON.stringify({ message: "ok", ...summary }));
  console.log(`restored from ${resolve(folder)}: the store (schema ${summary.schemaVersion}) and ${summary.confFiles.length} conf files${summary.keptAs ? `; the store it replaced is kept as ${summary.keptAs}` : ""}`);
}

/** Whether something accepts TCP connections at host:port (within a second). */
function answers(host: string, port: number): Promise<boolean> {
  return new Promise((resolveAnswer) => {
    const socket = connect({ host, port, timeout: 1000 });
    const done = (yes: boolean) => {
      socket.destroy();
      resolveAnswer(yes);
    };
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
    socket.once("timeout", () => done(false));
  });
}
