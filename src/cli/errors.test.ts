import { describe, expect, it } from "vitest";
import { Command } from "commander";
import { HostApiError, UnreachableError } from "../sdk/index.js";
import { bashCompletion, completionTable } from "./completion.js";
import { EXIT, UsageError } from "./errors.js";
import { explain } from "./local-agent.js";
import { createProgram, runArgs } from "./program.js";
import { COMMANDS } from "./commands/index.js";

describe("exit codes", () => {
  it("are distinct, and the documented ones", () => {
    expect(EXIT).toEqual({ ok: 0, failed: 1, usage: 2, unreachable: 3, config: 78 });
    expect(new Set(Object.values(EXIT)).size).toBe(Object.values(EXIT).length);
    expect(new UsageError("x").exitCode).toBe(EXIT.usage);
  });

  it("a server's refusal exits 1, an agent that does not answer 3, anything else passes through", () => {
    expect(explain(new HostApiError(409, "vm is closed"))).toMatchObject({ exitCode: 1, message: "refused: vm is closed" });
    expect(explain(new UnreachableError("http://127.0.0.1:1/x", new Error("ECONNREFUSED")))).toMatchObject({ exitCode: 3, message: expect.stringMatching(/no agent answers/) });
    const bug = new TypeError("a bug");
    expect(explain(bug)).toBe(bug);
  });

  it("commander's refusals are usage errors (2); --help and --version are not errors", async () => {
    const quiet = (p: Command) => void p.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    await expect(runArgs(["nonsense"], [quiet, ...COMMANDS])).rejects.toMatchObject({ exitCode: 2 });
    await expect(runArgs(["vm", "show"], [quiet, ...COMMANDS])).rejects.toMatchObject({ exitCode: 2 });
    await expect(runArgs(["vm", "list", "--nope"], [quiet, ...COMMANDS])).rejects.toMatchObject({ exitCode: 2 });
    await expect(runArgs(["--version"], [quiet, ...COMMANDS])).resolves.toBeUndefined();
    await expect(runArgs(["vm", "--help"], [quiet, ...COMMANDS])).resolves.toBeUndefined();
  });
});

describe("completion", () => {
  const program = createProgram(COMMANDS);

  it("covers every command path, with its subcommands and flags", () => {
    const table = new Map(completionTable(program).map((n) => [n.path, n.words]));
    expect(table.get("")).toEqual(expect.arrayContaining(["agent", "vm", "task", "rent", "wallet", "completion", "--version"]));
    expect(table.get(" vm")).toEqual(expect.arrayContaining(["list", "ls", "create", "console", "disk", "snapshot"]));
    expect(table.get(" vm create")).toEqual(expect.arrayContaining(["--cpus", "--memory", "--no-wait", "--remote", "-o", "--json"]));
    expect(table.get(" vm disk add")).toEqual(expect.arrayContaining(["--size"]));
    expect(table.get(" task start")).toEqual(expect.arrayContaining(["--wallet-file", "--node", "--mem-gib"]));
  });

  it("the bash script is valid bash and completes as the table says", async () => {
    const { spawnSync } = await import("node:child_process");
    const script = bashCompletion(program);
    const complete = (line: string) => {
      const words = line.split(" ");
      const probe = `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _batu; printf '%s\\n' "\${COMPREPLY[@]}"`;
      const r = spawnSync("bash", ["-c", probe], { encoding: "utf8" });
      expect(r.status, r.stderr).toBe(0);
      return r.stdout.trim().split("\n").filter(Boolean);
    };
    expect(complete("batu v")).toEqual(["vm", "version"]);
    expect(complete("batu vm cr")).toEqual(["create"]);
    expect(complete("batu vm --json disk a")).toEqual(["add"]);
    expect(complete("batu vm create --mem")).toEqual(["--memory"]);
  });
});
