import type { Command } from "commander";
import { bashCompletion, zshCompletion } from "../completion.js";
import { UsageError } from "../errors.js";

export const usage = `batu completion bash|zsh
  Prints a completion script for the shell: commands, subcommands and flags.
    eval "$(batu completion bash)"     # in ~/.bashrc
    eval "$(batu completion zsh)"      # in ~/.zshrc`;

export function register(program: Command): void {
  program
    .command("completion")
    .description("print a shell completion script (bash, zsh)")
    .addHelpText("after", `\n${usage}`)
    .argument("<shell>", "bash or zsh")
    .action((shell: string) => {
      if (shell === "bash") return void process.stdout.write(bashCompletion(program));
      if (shell === "zsh") return void process.stdout.write(zshCompletion(program));
      throw new UsageError(`completion: bash or zsh, not ${shell}`);
    });
}
