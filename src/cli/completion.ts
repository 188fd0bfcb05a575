/**
 * Shell completion scripts made from the command tree itself, so they never fall behind it: each
 * command path (`vm`, `vm disk`, ...) completes to its subcommands and its flags. zsh runs the bash
 * script through bashcompinit.
 */
import type { Command } from "commander";

interface Node {
  /** ` vm disk`: the words after `batu`, each with a space before it. */
  path: string;
  words: string[];
}

function walk(cmd: Command, path: string, out: Node[]): void {
  const subs = cmd.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden);
  const names = subs.flatMap((c) => [c.name(), ...c.aliases()]);
  const flags = cmd.options.flatMap((o) => [o.long, o.short].filter((f): f is string => Boolean(f)));
  out.push({ path, words: [...names, ...(path === "" ? ["help", "--help", "--version"] : ["--help"]), ...flags] });
  for (const c of subs) for (const name of [c.name(), ...c.aliases()]) walk(c, `${path} ${name}`, out);
}

/** The tree as (path, completions) pairs, the root's path empty. */
export function completionTable(program: Command): Node[] {
  const out: Node[] = [];
  walk(program, "", out);
  return out;
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export function bashCompletion(program: Command): string {
  const nodes = completionTable(program);
  const cases = nodes.map((n) => `    ${quote(n.path)}) words=${quote(n.words.join(" "))} ;;`).join("\n");
  const known = nodes.filter((n) => n.path !== "").map((n) => quote(n.path)).join("|");
  return `# batu completion for bash: eval "$(batu completion bash)", or save it in /etc/bash_completion.d/batu
_batu() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" w i words
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    [[ "$w" == -* ]] && continue
    case "$path $w" in
      ${known}) path="$path $w" ;;
    esac
  done
  case "$path" in
${cases}
    *) words="" ;;
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _batu batu
`;
}

export function zshCompletion(program: Command): string {
  return `# batu completion for zsh: eval "$(batu completion zsh)" in ~/.zshrc
(( $+functions[compdef] )) || { autoload -U +X compinit && compinit; }
autoload -U +X bashcompinit && bashcompinit
${bashCompletion(program)}`;
}
