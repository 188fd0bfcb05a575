import { describe, expect, it } from "vitest";
import { Command } from "commander";
import { parsePin, remoteEndpoint } from "./local-agent.js";
import { collect, parseCount, parsePort, withAgentOptions, withOutputOptions } from "./options.js";
import { runArgs } from "./program.js";
import { createRequest } from "./commands/vm.js";
import { createAdditional, modifyAdditional } from "./commands/task.js";

/** Parses `args` with a one-command program; resolves with what its action got. */
async function parsed(args: string[], build: (cmd: Command) => Command): Promise<Record<string, unknown>> {
  let got: Record<string, unknown> = {};
  await runArgs(["probe", ...args], [(p) => void build(p.command("probe")).action((opts: Record<string, unknown>) => void (got = opts))]);
  return got;
}

describe("options: the shared flags", () => {
  it("agent flags have their defaults, take values anywhere on the line, and camelCase names", async () => {
    expect(await parsed([], withAgentOptions)).toEqual({ confDir: "./conf", dataDir: "./data", port: "10000", tlsPort: "10443", host: "0.0.0.0" });
    expect(await parsed(["--port", "1234", "--conf-dir=/etc/batu"], withAgentOptions)).toMatchObject({ port: "1234", confDir: "/etc/batu" });
  });

  it("-o takes only table, json or yaml (exit 2 otherwise)", async () => {
    expect(await parsed(["-o", "yaml", "--json"], withOutputOptions)).toMatchObject({ output: "yaml", json: true });
    await expect(parsed(["-o", "xml"], withOutputOptions)).rejects.toMatchObject({ exitCode: 2 });
  });

  it("an unknown flag or a stray argument is a usage error (exit 2)", async () => {
    await expect(parsed(["--bogus"], withAgentOptions)).rejects.toMatchObject({ exitCode: 2 });
    await expect(parsed(["extra"], withAgentOptions)).rejects.toMatchObject({ exitCode: 2 });
  });

  it("ports, counts and repeated flags", () => {
    expect(parsePort("10000")).toBe(10000);
    expect(() => parsePort("65536")).toThrow(/--port: not a port number/);
    expect(() => parsePort("80x", "--ssh-port")).toThrow(/--ssh-port/);
    expect(parseCount("4", "--cpus")).toBe(4);
    expect(() => parseCount("0", "--cpus")).toThrow(/--cpus: a whole number in \[1,/);
    expect(() => parseCount("1.5", "--cpus")).toThrow(/--cpus/);
    expect(collect("b", collect("a"))).toEqual(["a", "b"]);
  });
});

describe("options: --remote and --tls-pin", () => {
  it("reads an agent's URL, its default port by scheme", () => {
    expect(remoteEndpoint("https://192.168.1.44:10443")).toEqual({ address: "192.168.1.44:10443", https: true });
    expect(remoteEndpoint("https://192.168.1.44")).toEqual({ address: "192.168.1.44:10443", https: true });
    expect(remoteEndpoint("http://10.0.0.2")).toEqual({ address: "10.0.0.2:10000", https: false });
    expect(remoteEndpoint("192.168.1.44:9443")).toEqual({ address: "192.168.1.44:9443", https: true });
    expect(remoteEndpoint("https://[fe80::1]:10443")).toEqual({ address: "[fe80::1]:10443", https: true });
    expect(() => remoteEndpoint("ftp://x")).toThrow(/http or https/);
    expect(() => remoteEndpoint("https://x/common")).toThrow(/without a path/);
  });

  it("a pin is the certificate's SHA-256 as batu tls prints it (colons and case allowed)", () => {
    const hex = "ab".repeat(32);
    expect(parsePin(hex.toUpperCase())).toBe(hex);
    expect(parsePin(hex.match(/../g)!.join(":"))).toBe(hex);
    expect(() => parsePin("sha256//abc")).toThrow(/64 hex/);
  });
});

describe("options: what vm create and task start send", () => {
  const base = { confDir: "c", dataDir: "d", port: "1", tlsPort: "2", host: "h", wait: true, timeout: "300" };

  it("vm create: the host API's fields, only those given", () => {
    expect(createRequest({ ...base, cpus: "2", memory: "512M", forward: ["tcp,8080:80"], name: "web" })).toEqual({
      nickname: "web",
      cpu_physical_core: 2,
      main_memory: "512M",
      custom_port: ["tcp,8080:80"],
    });
    expect(() => createRequest({ ...base, cpus: "1", memory: "lots" })).toThrow(expect.objectContaining({ exitCode: 2, message: expect.stringMatching(/--memory/) }));
    expect(() => createRequest({ ...base, cpus: "1", memory: "1G", sshPort: "70000" })).toThrow(/--ssh-port/);
  });

  it("task start and modify: DBC's additional, every value a string as dbc_client sends it", () => {
    expect(createAdditional({ ...base, memGib: "2", diskGib: "5", forward: ["tcp,8080:80"] })).toEqual({
      cpu_cores: "1",
      mem_size: "2",
      disk_size: "5",
      custom_port: ["tcp,8080:80"],
    });
    expect(modifyAdditional({ ...base, cpus: "4", vncPort: "5901" })).toEqual({ new_cpu_cores: "4", new_vnc_port: "5901" });
    expect(modifyAdditional({ ...base })).toEqual({});
  });
});
