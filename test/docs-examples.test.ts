// The worked examples of docs/, run as written against a real agent: what a reader copies must work.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { CLI, TestAgents, type AgentProcess } from "./helpers/agent-process.js";

const DOCS = resolve(import.meta.dirname, "../docs");

/** The ```sh blocks of one section of a markdown file (from its `## title` to the next `## `), in order. */
function shellBlocks(file: string, section: string): string[] {
  const text = readFileSync(join(DOCS, file), "utf8");
  const start = text.indexOf(`## ${section}\n`);
  if (start < 0) throw new Error(`${file}: no section "${section}"`);
  const end = text.indexOf("\n## ", start + 1);
  const body = text.slice(start, end < 0 ? undefined : end);
  return [...body.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/** Runs a script with bash in `cwd`, `batu` on the PATH; resolves with its output, rejects naming the failing line. */
function bash(script: string, cwd: string, path: string): Promise<string> {
  return new Promise((ok, fail) => {
    execFile("bash", ["-euo", "pipefail", "-c", script], { cwd, env: { ...process.env, PATH: `${path}:${process.env.PATH}` }, timeout: 60_000 }, (err, stdout, stderr) =>
      err ? fail(new Error(`${err.message}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`)) : ok(stdout),
    );
  });
}

const agents = new TestAgents();
let agent: AgentProcess;
let home: string;
let bin: string;

beforeAll(async () => {
  home = agents.dir("batu-docs-");
  agent = await agents.start({ dir: home });
  // `batu` as a reader has it: the CLI, told which port this agent listens on (the docs assume 10000).
  bin = join(home, "bin");
  mkdirSync(bin);
  writeFileSync(
    join(bin, "batu"),
    `#!/bin/sh\ncase "$1" in rent|group) exec "${process.execPath}" "${CLI}" "$@" --port ${agent.port};; *) exec "${process.execPath}" "${CLI}" "$@";; esac\n`,
  );
  chmodSync(join(bin, "batu"), 0o755);
});
afterAll(() => agents.cleanup());

describe("docs/renter-auth.md: the worked example", () => {
  it("runs as written: a wallet, a rental, signed calls, a replay refused, a session used by a second user", async () => {
    const blocks = shellBlocks("renter-auth.md", "Worked example");
    expect(blocks).toHaveLength(4);
    // The doc's hosts are the reader's master; here, this agent. The operator's commands run where its conf is.
    const script = blocks.join("\n").replaceAll("http://127.0.0.1:10000", agent.url).replaceAll("http://master:10000", agent.url);
    const out = (await bash(script, home, bin)).trim().split("\n");
    const replies = out.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    // The two replies the renter reads, then the replay refused, then the second user's list.
    const calls = replies.filter((r) => "errcode" in r);
    expect(calls).toEqual([
      { errcode: 0, message: [] },
      { errcode: -3, message: "check authority failed: nonce check failed: nonce is already exist" },
      { errcode: 0, message: [] },
    ]);
    expect(out.join("\n")).toMatch(/active/); // batu rent list shows the rental
  });
});
