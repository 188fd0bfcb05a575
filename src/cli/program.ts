/**
 * The `batu` command tree on commander: each command file registers its commands on the program
 * (`register(program)`), this file sets how the whole tree parses and fails. Commander prints its
 * own parse errors (an unknown flag, a missing argument) and throws; `runArgs` turns those into a
 * UsageError (exit 2), so every failure leaves through one place (main.ts) with its exit code.
 */
import { Command, CommanderError } from "commander";
import { VERSION } from "../lib/version.js";
import { EXIT, UsageError } from "./errors.js";

export type Registrar = (program: Command) => void;

/** The program with the given commands registered. */
export function createProgram(registrars: readonly Registrar[]): Command {
  const program = new Command("batu")
    .description("batu: a self-hosted GPU/VM cloud for the machines of one local network")
    .version(`batu ${VERSION}`, "-v, --version", "print the version")
    .exitOverride()
    .showHelpAfterError("(add --help for usage)")
    // "batu: <what>" like every other failure, not commander's "error: <what>".
    .configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, "batu: ")) })
    .configureHelp({ showGlobalOptions: false });
  for (const register of registrars) register(program);
  return program;
}

/** Commander's own ends: help asked for, or the version: exit 0. */
const CLEAN_EXITS = new Set(["commander.helpDisplayed", "commander.version"]);

/**
 * Parses and runs `args` (without `node batu`). Resolves when the command is done; rejects with a
 * UsageError (usage, exit 2) for what commander refused, or whatever the command threw.
 */
export async function runArgs(args: string[], registrars: readonly Registrar[]): Promise<void> {
  const program = createProgram(registrars);
  if (args.length === 0) {
    program.outputHelp();
    return;
  }
  try {
    await program.parseAsync(args, { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (CLEAN_EXITS.has(e.code)) return;
      // Already printed by commander; only its exit code is left to give.
      throw new UsageError("", EXIT.usage);
    }
    throw e;
  }
}
