import type { Command } from "commander";
import { VERSION } from "../../lib/version.js";

export const usage = "batu version\n  Prints batu's version.";

export function register(program: Command): void {
  program.command("version").description("print the version").addHelpText("after", `\n${usage}`).action(() => versionCommand());
}

async function versionCommand(): Promise<void> {
  console.log(`batu ${VERSION}`);
}
